"""Links found in abstracts: cleaned of surrounding punctuation and LaTeX, and told apart
as "code" (GitHub and similar hosts) or "project page"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

LinkKind = Literal["code", "project"]


@dataclass(frozen=True)
class Link:
    url: str
    kind: LinkKind  # "code" for GitHub/GitLab/Bitbucket/Codeberg/HF..., else "project"

    @property
    def label(self) -> str:
        return "code" if self.kind == "code" else "project page"


# --- links -----------------------------------------------------------------------------------

URL_RE = re.compile(r"https?://[^\s<>\"'{}|\\^`\[\]]+", re.IGNORECASE)
_URL_TRAILING = ".,;:!?*…。，；：！？、”’»"
_CODE_HOSTS = (
    "github.com",
    "gitlab.com",
    "bitbucket.org",
    "codeberg.org",
    "huggingface.co",
    "sourceforge.net",
    "gitee.com",
)


def trim_url(url: str) -> str:
    """Drop sentence punctuation and unbalanced closing parentheses from the end of a URL."""
    opening, closing, end = url.count("("), url.count(")"), len(url)
    while end:
        last = url[end - 1]
        if last == ")" and closing > opening:
            closing -= 1
        elif last not in _URL_TRAILING:
            break
        end -= 1
    return url[:end]


def _link_kind(url: str) -> LinkKind:
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return "project"
    code = any(host == name or host.endswith("." + name) for name in _CODE_HOSTS)
    return "code" if code else "project"


def _url_identity(url: str) -> str:
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}".rstrip("/")


def extract_links(text: str) -> tuple[Link, ...]:
    """Every http(s) URL in ``text``, cleaned of surrounding punctuation, first occurrence kept."""
    links: list[Link] = []
    seen: set[str] = set()
    for match in URL_RE.finditer(text):
        url = trim_url(match.group())
        if not re.match(r"https?://\w", url, re.IGNORECASE):
            continue
        identity = _url_identity(url)
        if identity not in seen:
            seen.add(identity)
            links.append(Link(url=url, kind=_link_kind(url)))
    return tuple(links)


_LATEX_FONT = re.compile(r"\{\\(?:it|em|bf|sl|sc|tt|rm)\s+([^{}]*)\}")
_LATEX_CMD = re.compile(r"\\(?:textit|textbf|emph|texttt|textsc|url|href)\{([^{}]*)\}")
_URL_TWICE = re.compile(r"(https?://[^\s{}]+)\{\1\}")
_LATEX_ESCAPE = re.compile(r"\\([%&_#$])")


def tidy_text(text: str) -> str:
    """Abstract text for reading: LaTeX fragments ({\\it only}, \\url{…}, a~b, \\%) and a
    URL repeated in braces (``https://x/{https://x/}``) shown as plain text."""
    text = _URL_TWICE.sub(r"\1", text)
    text = _LATEX_FONT.sub(r"\1", text)
    text = _LATEX_CMD.sub(r"\1", text)
    text = _LATEX_ESCAPE.sub(r"\1", text)
    return re.sub(r"(?<=\S)~(?=\S)", " ", text)
