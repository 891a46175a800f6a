"""No value that passes the settings checks crashes later: NaN, infinities, numbers too
large for a date or a timer, values of the wrong type and TOML nested thousands of levels
deep (in the settings or in the areas file) are refused when the settings are read, in
one line naming the key (or the file) — never published with, never a traceback."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.app import make_app
from digest.config import SECTIONS, env_name, load_settings, toml_key
from digest.errors import ConfigError

NUMBERS = sorted(
    (section, toml_key(f))
    for section, cls in SECTIONS.items()
    for f in dataclasses.fields(cls)
    if f.type in ("int", "float")
)
DEEP = "[" * 3000 + "]" * 3000
# TOML spellings of values no number setting takes.
BAD_TOML = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "+inf", "-nan", "1e300", "-1e300", "1e309"]),
    st.sampled_from(['"5"', "true", "[1]", "{ a = 1 }", "1979-05-27", DEEP]),
    st.floats(min_value=1e10, allow_infinity=False).map(repr),
    st.integers(min_value=11, max_value=5000).map(lambda digits: "9" * digits),
    st.integers(min_value=11, max_value=400).map(lambda digits: "-" + "9" * digits),
)
# Environment spellings.
BAD_ENV = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1e300", "1e309", "abc", "", "1_0e999"]),
    st.integers(min_value=11, max_value=5000).map(lambda digits: "9" * digits),
)
MANY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def refused(error: ConfigError, *names: str) -> None:
    message = str(error)
    assert "\n" not in message and len(message) < 400, message
    assert any(name in message for name in names), (names, message)


@MANY
@given(key=st.sampled_from(NUMBERS), value=BAD_TOML)
def test_a_bad_number_in_the_settings_file_is_refused_in_one_line(
    tmp_path_factory: pytest.TempPathFactory, key: tuple[str, str], value: str
) -> None:
    section, name = key
    path = tmp_path_factory.mktemp("s") / "digest.toml"
    path.write_text(f"[{section}]\n{name} = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    refused(info.value, f"{section}.{name}", str(path))


@MANY
@given(key=st.sampled_from(NUMBERS), value=BAD_ENV)
def test_a_bad_number_in_the_environment_is_refused_in_one_line(
    key: tuple[str, str], value: str
) -> None:
    var = env_name(*key)
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={var: value})
    refused(info.value, f"${var}")


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("email.rate_limit", "nan"),
        ("subscribe.confirm_hours", "inf"),
        ("email.max_run_minutes", "nan"),
        ("subscribe.confirm_hours", "1e300"),
        ("schedule.retry_minutes", "1e300"),
        ("digest.max_dump_bytes", str(10**30)),
    ],
)
def test_the_values_seen_crashing_later_are_refused(
    tmp_path: Path, setting: str, value: str
) -> None:
    section, name = setting.split(".")
    path = tmp_path / "digest.toml"
    path.write_text(f"[{section}]\n{name} = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    refused(info.value, setting)
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={env_name(section, name): value})
    refused(info.value, env_name(section, name))


@pytest.mark.parametrize(
    "deep",
    [
        f"x = {DEEP}\n",
        "x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
        "[" + ".".join(["a"] * 3000) + "]\nb = 1\n",
    ],
    ids=["arrays", "inline-tables", "dotted-table"],
)
def test_toml_nested_thousands_deep_is_refused_in_one_line(tmp_path: Path, deep: str) -> None:
    path = tmp_path / "digest.toml"
    path.write_text("[digest]\n" + deep if not deep.startswith("[") else deep, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    refused(info.value, str(path))
    areas = tmp_path / "areas.toml"
    areas.write_text(deep, encoding="utf-8")
    path.write_text(f'[digest]\nareas_file = "{areas}"\nstate_dir = "{tmp_path}/state"\n')
    app = make_app(load_settings(path, environ={}))
    with pytest.raises(ConfigError) as info:
        app.vocabulary()
    refused(info.value, str(areas))
