"""Parsing and ingesting a huge dump: time and peak memory, next to a baseline measured
in the same run (reading the bytes and splitting them into blocks, which any parser
must at least do).

    python tests/bench/bench_ingest.py [MEGABYTES]
    pytest tests/bench -o python_files='bench_*.py' -s -k ingest
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from digest.app import ingesting, make_app
from digest.config import DigestSection, Settings
from digest.ingest.parse import parse_bytes
from tests.support.dumps import parse_dump

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "examples" / "dumps").glob("*.txt"))


def huge_dump(megabytes: float) -> bytes:
    """A dump of distinct papers made by renaming the sample ones."""
    papers = [p for f in SAMPLES for p in parse_dump(str(f)).papers]
    out = ["new", "Get trending papers in your email inbox!", "Subscribe", "Mar 14"]
    size, i = 0, 0
    while size < megabytes * 1_000_000:
        p = papers[i % len(papers)]
        out += [f"{p.title} (variant {i})", p.abstract]
        size += len(p.title) + len(p.abstract) + 20
        i += 1
    return ("\n\n".join(out) + "\n").encode()


def measure(fn: Callable[[], Any], memory: bool = True) -> tuple[float, float, Any]:
    """Seconds (a run without tracing) and peak traced MB (a second run), and the result."""
    t0 = time.perf_counter()
    result = fn()
    took = time.perf_counter() - t0
    if not memory:
        return took, 0.0, result
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return took, peak, result


def test_ingest(megabytes: float = 20.0) -> None:
    data = huge_dump(megabytes)
    now = datetime.now(UTC)
    base_t, base_m, blocks = measure(lambda: data.decode("utf-8").split("\n\n"))
    parse_t, parse_m, listing = measure(lambda: parse_bytes(data, name="huge.txt", mtime=now))
    assert len(listing.papers) == (len(blocks) - 4) // 2
    with tempfile.TemporaryDirectory() as tmp:
        dumps = Path(tmp) / "dumps"
        dumps.mkdir()
        (dumps / "huge.txt").write_bytes(data)
        settled = time.time() - 3600  # a file still being written is left for the next run
        os.utime(dumps / "huge.txt", (settled, settled))
        settings = Settings(
            digest=DigestSection(dumps_dir=str(dumps), state_dir=str(Path(tmp) / "state")),
            base_dir=Path(tmp),
        )
        app = make_app(settings)
        ingest_t, _, report = measure(lambda: ingesting.ingest(app), memory=False)
    n = len(listing.papers)
    print(f"\n{len(data) / 1e6:.1f} MB dump, {n:,} papers")
    print(f"baseline: decode + split into blocks   {base_t:6.2f} s  peak {base_m:7.1f} MB")
    print(f"parse_bytes (the parser)               {parse_t:6.2f} s  peak {parse_m:7.1f} MB")
    print(
        f"App.ingest (parse + store in SQLite)   {ingest_t:6.2f} s  ({n / ingest_t:,.0f} papers/s)"
    )
    assert report.dumps[0].papers == n


if __name__ == "__main__":
    test_ingest(float(sys.argv[1]) if len(sys.argv) > 1 else 20.0)
