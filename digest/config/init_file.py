"""The `digest init` writer: the commented default `digest.toml`, written from the same
declarations as the schema, so the file and the defaults never drift."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from digest.config.checks import _range
from digest.config.schema import SECTIONS, toml_key


def default_toml() -> str:
    """The commented `digest.toml` that `digest init` writes: every setting and its default."""
    lines = [
        "# digest configuration. Every key can be overridden by an environment variable",
        "# DIGEST_<SECTION>_<KEY>, e.g. DIGEST_EMAIL_SMTP_HOST. Relative paths are",
        "# relative to this file. Secrets never go here: the SMTP password is read",
        "# from $DIGEST_EMAIL_SMTP_PASSWORD.",
    ]
    for name, cls in SECTIONS.items():
        lines += ["", f"[{name}]"]
        for f in dataclasses.fields(cls):
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            lines.append(f"# {f.metadata['help']}")
            choices = f.metadata.get("choices")
            if choices:
                lines.append(f"# One of: {', '.join(choices)}.")
            low, high, above = (f.metadata.get(k) for k in ("low", "high", "above"))
            if low is not None or high is not None or above is not None:
                lines.append(f"# Allowed: {_range(low, high, above)}.")
            lines.append(f"{toml_key(f)} = {_toml_value(default)}")
    lines += [
        "",
        "# Themes: each paper goes to the configured theme whose keywords it matches best;",
        "# the rest go to the research areas they match (`digest areas`), what fits no area",
        '# to named topics, and "More papers" keeps at most a tenth of them. Repeat',
        "# [[themes]] for each theme.",
        "# [[themes]]",
        '# name = "Mixture of experts"',
        '# keywords = ["mixture of experts", "moe", "router", "experts"]',
        '# description = "Sparse expert models and routing"',
        "# exclude = []",
        "",
    ]
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)
