"""Settings: defaults, the TOML file, DIGEST_* overrides, and one-line validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import load_settings
from digest.errors import ConfigError


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "digest.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(None, environ={})
    assert s.source == "defaults"
    assert s.dumps_dir == tmp_path / "dumps"
    assert s.database_url == f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
    assert s.outbox_dir == tmp_path / "state" / "outbox"
    assert s.email.transport == "maildir" and s.email.recipients == []
    assert s.schedule.cron == "0 8 * * *"


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "digest.toml"
    path.write_text('[digest]\ndumps_dir = "in"\nstate_dir = "/var/x"\n')
    s = load_settings(path, environ={})
    assert s.dumps_dir == tmp_path / "conf" / "in"
    assert s.state_dir == Path("/var/x")


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[email]\nsmtp_host = "mail.example.org"\nsmtp_port = 25\n')
    env = {
        "DIGEST_EMAIL_SMTP_PORT": "2525",
        "DIGEST_EMAIL_RECIPIENTS": "a@example.org, b@example.org",
        "DIGEST_DIGEST_MIN_PAPERS": "5",
        "DIGEST_SCHEDULE_POLL_SECONDS": "0.5",
    }
    s = load_settings(path, environ=env)
    assert s.email.smtp_host == "mail.example.org"
    assert s.email.smtp_port == 2525
    assert s.email.recipients == ["a@example.org", "b@example.org"]
    assert s.digest.min_papers == 5 and s.schedule.poll_seconds == 0.5


def test_config_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[digest]\ntitle = "From env"\n')
    monkeypatch.setenv("DIGEST_CONFIG", str(path))
    assert load_settings().digest.title == "From env"


@pytest.mark.parametrize(
    ("body", "env", "message"),
    [
        ("[email]\nsmtp_port = 'x'\n", {}, "email.smtp_port: expected a whole number, got 'x'"),
        ("[email]\nsmtp_prot = 25\n", {}, "unknown setting email.smtp_prot"),
        ("[mail]\n", {}, "unknown section [mail]"),
        ("[email]\ntransport = 'pigeon'\n", {}, "email.transport = 'pigeon' is not one of"),
        ("[digest\n", {}, "not valid TOML"),
        (
            "",
            {"DIGEST_EMAIL_SMTP_PORT": "many"},
            "$DIGEST_EMAIL_SMTP_PORT: expected a whole number",
        ),
        ("[[themes]]\nname = 'X'\n", {}, "themes #1 (X): keywords must list at least one word"),
        ("[[themes]]\nkeywords = ['a']\n", {}, "themes #1: name must be a non-empty string"),
        (
            "[[themes]]\nname='A'\nkeywords=['a']\n[[themes]]\nname='a'\nkeywords=['b']\n",
            {},
            "theme 'a' is configured twice",
        ),
    ],
)
def test_errors_name_the_key(tmp_path: Path, body: str, env: dict[str, str], message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=env)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_password_never_comes_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[email]\nsmtp_password = 'hunter2'\n")
    with pytest.raises(ConfigError, match=r"unknown setting email\.smtp_password"):
        load_settings(path, environ={})


def test_repo_config_runs_the_bundled_sample() -> None:
    root = Path(__file__).resolve().parent.parent
    s = load_settings(root / "digest.toml", environ={})
    assert s.dumps_dir == root / "examples" / "dumps"
    assert len(list(s.dumps_dir.glob("*.txt"))) == 3
    # sections from the vocabulary alone: the sample's own themes duplicated its areas
    assert s.themes == () and s.email.recipients
