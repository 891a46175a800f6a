"""How long theme assignment takes for 100, 1,000 and 10,000 papers (made by recombining
the sample dumps), each next to baselines measured in the same run: the same sections
before they were made lean (the sections modules of ``LEAN_COMMIT``: dense neighbour
blocks, every paper's tokens held), the previous path
(sections sized by the issue: fold-up and split, the vocabulary of commit
``PREVIOUS_COMMIT``; both loaded from git into a temporary package, shown when git has it),
keyword-only
assignment (configured themes, no automatic topics), topic discovery alone on every paper
(what assignment did before research areas: 0.06–0.10 / 0.6–0.75 / 3.4–4.4 s on the
2-core CI machine), and a naive TF-IDF + KMeans on the full TF-IDF matrix (no reduction,
no names).

    python tests/bench/bench_themes.py
    pytest tests/bench -o python_files='bench_*.py' -s

No timing is asserted: the figures are printed for a person to read.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from digest.config import ThemeConfig  # noqa: E402
from digest.sections.assign import assign  # noqa: E402
from tests.support.papers import Paper, generate  # noqa: E402

SIZES = (100, 1_000, 10_000)
PREVIOUS_COMMIT = "156dd35"  # the last commit whose sections depended on the size
LEAN_COMMIT = "f2aaf28"  # the last commit before sections held less and searched sparsely
_PREVIOUS = ("areas.py", "areas.toml", "match.py", "assign.py")
THEMES = (
    ThemeConfig("Mixture of experts", ("mixture of experts", "moe", "router", "experts")),
    ThemeConfig("Music and audio", ("music", "audio", "song", "midi", "speech")),
    ThemeConfig("Image generation", ("text-to-image", "t2i", "image generation", "diffusion")),
)


def naive_kmeans(papers: list[Paper]) -> int:
    """TF-IDF + KMeans on the sparse matrix, k = sqrt(n): clusters without names."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    matrix = TfidfVectorizer(stop_words="english").fit_transform(
        [f"{p.title}. {p.abstract}" for p in papers]
    )
    k = max(1, min(30, round(len(papers) ** 0.5)))
    return len(set(KMeans(k, n_init=1, random_state=0).fit(matrix).labels_))


def discovery_only(papers: list[Paper]) -> int:
    """Topic discovery on every paper, the way sections were cut before research areas."""
    from digest.sections.discover import discover

    return len(discover([p.title for p in papers], [p.abstract for p in papers]).sections)


def previous_assign(
    commit: str = PREVIOUS_COMMIT, package: str = "previous_sections"
) -> Callable[..., Any] | None:
    """``assign`` as it was at ``commit`` (a copy of its sections modules in a temporary
    package), or None when git or that commit is not at hand."""
    folder = Path(tempfile.mkdtemp(prefix="bench-themes-")) / package
    folder.mkdir()
    for name in _PREVIOUS:
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{commit}:digest/sections/{name}"],
            capture_output=True,
            text=True,
        )
        if shown.returncode != 0:
            return None
        text = shown.stdout.replace("digest.sections.areas", f"{package}.areas")
        text = text.replace("digest.sections.match", f"{package}.match")
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "__init__.py").write_text("", encoding="utf-8")
    sys.path.insert(0, str(folder.parent))
    return importlib.import_module(f"{package}.assign").assign


def timed(work: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


Row = tuple[int, float, float, float, float, float, float, int]


def run() -> list[Row]:
    assign(generate(50), ())  # imports and caches warm
    previous = previous_assign()
    lean = previous_assign(LEAN_COMMIT, "unlean_sections")
    for other in (previous, lean):
        if other:
            other(generate(50), ())
    rows = []
    for n in SIZES:
        papers = generate(n)
        repeat = 3 if n <= 1_000 else 1
        ours = timed(lambda p=papers: assign(p, ()), repeat)  # type: ignore[misc]
        before_lean = (
            timed(lambda p=papers: lean(p, ()), repeat)  # type: ignore[misc]
            if lean
            else float("nan")
        )
        before_ours = (
            timed(lambda p=papers: previous(p, ()), repeat)  # type: ignore[misc]
            if previous
            else float("nan")
        )
        keywords = timed(lambda p=papers: assign(p, THEMES, automatic=False), repeat)  # type: ignore[misc]
        before = timed(lambda p=papers: discovery_only(p), repeat)  # type: ignore[misc]
        naive = timed(lambda p=papers: naive_kmeans(p), repeat)  # type: ignore[misc]
        sections = len(assign(papers, ()))
        rows.append((n, ours, before_lean, before_ours, keywords, before, naive, sections))
    return rows


def report(rows: list[Row]) -> str:
    lines = [
        "theme assignment (best of runs; seconds)",
        f"{'papers':>8}  {'areas+topics':>12}  {LEAN_COMMIT + ' (same)':>14}  "
        f"{'previous path':>13}  {'keywords only':>13}"
        f"  {'discovery only':>14}  {'naive kmeans':>12}  sections",
    ]
    for n, ours, lean, previous, keywords, before, naive, sections in rows:
        lines.append(
            f"{n:>8,}  {ours:>12.3f}  {lean:>14.3f}  {previous:>13.3f}  {keywords:>13.3f}"
            f"  {before:>14.3f}  {naive:>12.3f}  {sections:>8}"
        )
    return "\n".join(lines)


def test_bench_themes() -> None:
    print("\n" + report(run()))


if __name__ == "__main__":
    print(report(run()))
