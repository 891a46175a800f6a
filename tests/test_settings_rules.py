"""Every setting is checked when the settings are read: each command fails with one line
naming the key and what was wrong, before it creates anything under state/."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from digest.config import OTHER_ENV, SECTIONS, default_toml, env_name, load_settings, toml_key
from digest.errors import ConfigError
from digest.program import main
from tests.support.commands import every_command


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("DIGEST_CONFIG", "DIGEST_TEST_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def run(folder: Path, toml: str, *args: str, env: dict[str, str] | None = None) -> str:
    """The output of a command that must fail; asserts it is one line and exit 1, and
    that nothing was created beside digest.toml."""
    (folder / "digest.toml").write_text(toml, encoding="utf-8")
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["digest.toml"]  # no state/
    assert result.output.count("\n") == 1, result.output
    return result.output.rstrip("\n")


RULES = [
    (
        '[digest]\nbase_url = "localhost:8000"\n',
        "digest.toml: digest.base_url = 'localhost:8000' is not an absolute http(s) URL "
        '(e.g. "https://example.org/digest")',
    ),
    (
        '[digest]\nbase_url = "ftp://example.org/digest"\n',
        "digest.toml: digest.base_url = 'ftp://example.org/digest' is not an absolute http(s) "
        'URL (e.g. "https://example.org/digest")',
    ),
    (
        '[email]\nfrom = "Papers digest <digest.example.org>"\n',
        "digest.toml: email.from = 'Papers digest <digest.example.org>' is not a valid "
        "address: An email address must have an @-sign.",
    ),
    (
        '[email]\nrecipients = ["ada@example.org", "bob@"]\n',
        "digest.toml: email.recipients = ['ada@example.org', 'bob@'] has 'bob@', which is "
        "not a valid address: There must be something after the @-sign.",
    ),
    (
        '[schedule]\ncron = "61 * * * *"\n',
        "digest.toml: schedule.cron = '61 * * * *' is not a cron expression: Error validating "
        "expression '61': the last value (61) is higher than the maximum value (59)",
    ),
    (
        '[schedule]\ncron = "every day"\n',
        "digest.toml: schedule.cron = 'every day' is not a cron expression: expected 5 fields "
        '(or 6 with seconds first), e.g. "0 8 * * *" for 08:00',
    ),
    (
        '[schedule]\ntimezone = "Mars/Olympus_Mons"\n',
        "digest.toml: schedule.timezone = 'Mars/Olympus_Mons' is not a known IANA zone "
        '(e.g. "Europe/Paris"; empty: the machine\'s zone)',
    ),
    (
        "[digest]\nabstract_chars = 1\n",
        "digest.toml: digest.abstract_chars = 1 is out of range: expected at least 40",
    ),
    (
        "[digest]\nfeed_size = -1\n",
        "digest.toml: digest.feed_size = -1 is out of range: expected 1 to 1000",
    ),
    (
        "[email]\nsmtp_timeout = 0\n",
        "digest.toml: email.smtp_timeout = 0.0 is out of range: expected more than 0",
    ),
    (
        '[digest]\ntheme = "../../etc"\n',
        "digest.toml: digest.theme = '../../etc' is not a template set name: use a folder name "
        "under templates/",
    ),
    (
        '[digest]\ndatabase_url = "not a url"\n',
        "digest.toml: digest.database_url = 'not a url' is not a valid SQLAlchemy URL "
        '(e.g. "postgresql+psycopg://digest@db/digest")',
    ),
    (
        '[digest]\ndatabase_url = "postgresql+psycopg://db:abc/digest"\n',
        "digest.toml: digest.database_url = 'postgresql+psycopg://db:abc/digest' has a port "
        "that is not a number",
    ),
    (
        '[digest]\ntitle = "Digest\\nBcc: x@example.org"\n',
        "digest.toml: digest.title = 'Digest\\nBcc: x@example.org' must be one line without "
        "control characters",
    ),
    (
        '[email]\nsmtp_host = "mail example org"\n',
        "digest.toml: email.smtp_host = 'mail example org' is not a host name or address "
        '(e.g. "mail.example.org")',
    ),
    (
        '[email]\ntransport = "pigeon"\n',
        "digest.toml: email.transport = 'pigeon' is not one of maildir, smtp",
    ),
    (
        "[email]\nsmtp_prot = 25\n",
        "digest.toml: unknown setting email.smtp_prot; did you mean smtp_port?",
    ),
    ("[emial]\n", "digest.toml: unknown section [emial]; did you mean email?"),
]


CASES = [
    pytest.param(toml, line, command, id=f"{command} {line.split(' ')[1]}")
    for toml, line in RULES
    # every rule for a read-only command; the schedule's also for `send` (today only `run`
    # checked them); every command is covered for one rule below
    for command in ("status", "send")
    if command == "status" or "schedule." in line
]


@pytest.mark.parametrize(("toml", "line", "command"), CASES)
def test_each_rule_is_one_line_before_anything_is_created(
    folder: Path, toml: str, line: str, command: str
) -> None:
    assert run(folder, toml, command) == f"Error: {line}"


def test_a_database_url_the_engine_refuses_names_the_setting() -> None:
    """What the settings' check lets through but SQLAlchemy cannot parse is a ConfigError
    naming the setting, not a traceback from the state."""
    from digest.state import db

    with pytest.raises(ConfigError, match=r"^digest\.database_url = 'not a url' is not a valid"):
        db.make_engine("not a url")


def test_an_environment_override_is_checked_the_same_way(folder: Path) -> None:
    out = run(folder, "", "status", env={"DIGEST_DIGEST_FEED_SIZE": "0"})
    assert out == "Error: $DIGEST_DIGEST_FEED_SIZE = 0 is out of range: expected 1 to 1000"


def test_an_unknown_digest_variable_names_the_closest_setting(folder: Path) -> None:
    out = run(folder, "", "send", env={"DIGEST_EMAIL_SMTP_PROT": "2525"})
    assert (
        out
        == "Error: $DIGEST_EMAIL_SMTP_PROT is not a setting; did you mean DIGEST_EMAIL_SMTP_PORT?"
    )
    out = run(folder, "", "status", env={"DIGEST_NOTHING_LIKE_IT": "1"})
    assert out == (
        "Error: $DIGEST_NOTHING_LIKE_IT is not a setting; unset it; a setting is "
        "DIGEST_<SECTION>_<KEY> (`digest init` lists them)"
    )


def test_the_variables_digest_itself_reads_are_allowed(folder: Path) -> None:
    assert {"DIGEST_CONFIG", "DIGEST_EMAIL_SMTP_PASSWORD", "DIGEST_IMAP_PASSWORD"} <= OTHER_ENV
    environ = dict.fromkeys(OTHER_ENV - {"DIGEST_CONFIG"}, "x")
    assert load_settings(None, environ=environ).smtp_password == ""  # read from os.environ


def test_the_test_suites_variables_are_ignored_without_being_listed(folder: Path) -> None:
    assert not any(var.startswith("DIGEST_TEST_") for var in OTHER_ENV)
    environ = {"DIGEST_TEST_DATABASE_URL": "x", "DIGEST_TEST_ANYTHING_NEW": "y"}
    assert load_settings(None, environ=environ).source == "defaults"


def _numeric() -> list[tuple[str, str, dataclasses.Field[object]]]:
    return [
        (name, toml_key(f), f)
        for name, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
        if f.type in ("int", "float", int, float)
    ]


@pytest.mark.parametrize(("section", "key", "f"), _numeric(), ids=lambda x: str(x)[:20])
def test_every_numeric_setting_has_a_range_that_is_enforced(
    section: str, key: str, f: dataclasses.Field[object]
) -> None:
    low, high, above = (f.metadata[k] for k in ("low", "high", "above"))
    assert low is not None or above is not None, f"{section}.{key} has no lower bound"
    step = 1 if f.type in ("int", int) else 0.5
    too_small = above if above is not None else low - step
    environ = {env_name(section, key): str(too_small)}
    with pytest.raises(ConfigError, match=rf"\${env_name(section, key)} = .* is out of range"):
        load_settings(None, environ=environ)
    if high is not None:
        environ = {env_name(section, key): str(high + 1)}
        with pytest.raises(ConfigError, match="is out of range"):
            load_settings(None, environ=environ)


def test_the_defaults_pass_every_rule(folder: Path) -> None:
    settings = load_settings(None, environ={})
    for name, cls in SECTIONS.items():
        assert getattr(settings, name) == cls()


def _commands(group: click.Group) -> list[tuple[str, ...]]:
    return [
        path
        for path, command in every_command(group)
        if not isinstance(command, click.Group) and path != ("init",)
    ]  # init writes a settings file; it reads none


def _arguments(command: click.Command) -> list[str]:
    """A plausible value for each required argument (they are not reached)."""
    values = {"address": "ada@example.org", "addresses": "ada@example.org", "file": "-"}
    return [
        values.get(p.name or "", "x")
        for p in command.params
        if isinstance(p, click.Argument) and p.required
    ]


@pytest.mark.parametrize("path", _commands(main), ids=" ".join)
def test_every_command_checks_the_settings_before_anything_else(
    folder: Path, path: tuple[str, ...]
) -> None:
    command = dict(every_command(main))[path]
    out = run(folder, "[digest]\nfeed_size = 0\n", *path, *_arguments(command))
    assert out == "Error: digest.toml: digest.feed_size = 0 is out of range: expected 1 to 1000"


def test_the_template_set_is_read_under_its_name_and_its_old_spelling(folder: Path) -> None:
    toml = folder / "digest.toml"
    toml.write_text('[digest]\ntemplate_set = "plain"\n', encoding="utf-8")
    assert load_settings(toml, environ={}).digest.template_set == "plain"
    toml.write_text('[digest]\ntheme = "plain"\n', encoding="utf-8")
    assert load_settings(toml, environ={}).digest.template_set == "plain"
    old_env = {"DIGEST_DIGEST_THEME": "other"}
    assert load_settings(None, environ=old_env).digest.template_set == "other"
    toml.write_text('[digest]\ntheme = "../x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"digest\.theme = '\.\./x' is not a template set"):
        load_settings(toml, environ={})
    toml.write_text('[digest]\ntheme = "a"\ntemplate_set = "b"\n', encoding="utf-8")
    both = r"digest\.template_set and digest\.theme \(its old spelling\) are both set"
    with pytest.raises(ConfigError, match=both):
        load_settings(toml, environ={})
    written = default_toml()
    assert 'template_set = "default"' in written and "old spelling: theme" in written
