"""Settings: declared once (name, type, default, help), loaded from `digest.toml`,
overridden by `DIGEST_<SECTION>_<KEY>` environment variables, validated at start-up.

Modules: `schema` (the `setting()` declarations, one dataclass per section, `Settings`),
`checks` (the format and range rules, each run once at load), `loader` (TOML and the
environment: `load_settings`, `parse_toml`) and `init_file` (what `digest init` writes,
from the same declarations). Import from `digest.config`: every public name is here.

May import: `digest.errors`, `digest.addresses`; never SQLAlchemy (the database URL's
shape is checked with the stdlib; `state.db` reports what its engine still refuses).
"""

from digest.config.checks import (
    SUBJECT_FIELDS,
    Check,
    address_problem,
    cron_trigger,
    schedule_zone,
    subject_template_problem,
)
from digest.config.init_file import default_toml
from digest.config.loader import (
    MAX_TOML_DEPTH,
    env_name,
    find_config,
    load_settings,
    parse_toml,
)
from digest.config.schema import (
    CONFIG_ENV,
    DEFAULT_CONFIG_NAME,
    IMAP_PASSWORD_ENV,
    OTHER_ENV,
    PASSWORD_ENV,
    SECTIONS,
    TOOLING_PREFIX,
    DigestSection,
    EmailSection,
    ScheduleSection,
    Settings,
    SubscribeSection,
    ThemeConfig,
    WebSection,
    iter_settings,
    setting,
    toml_key,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_NAME",
    "IMAP_PASSWORD_ENV",
    "MAX_TOML_DEPTH",
    "OTHER_ENV",
    "PASSWORD_ENV",
    "SECTIONS",
    "SUBJECT_FIELDS",
    "TOOLING_PREFIX",
    "Check",
    "DigestSection",
    "EmailSection",
    "ScheduleSection",
    "Settings",
    "SubscribeSection",
    "ThemeConfig",
    "WebSection",
    "address_problem",
    "cron_trigger",
    "default_toml",
    "env_name",
    "find_config",
    "iter_settings",
    "load_settings",
    "parse_toml",
    "schedule_zone",
    "setting",
    "subject_template_problem",
    "toml_key",
]
