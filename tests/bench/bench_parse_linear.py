"""Parsing time stays linear in the input, even for the worst last abstract: a long run
of non-space characters without a full stop (the ending check used to search it with
``\\S*(?:://|www\\.)\\S*$``: 264 s for 0.2 MB). Each hostile dump of n and 10n bytes is
timed next to a baseline from the same run: a dump of the same size made of ordinary
papers. Linear means the 10n dump takes at most 20 times the n one.

    python tests/bench/bench_parse_linear.py [KILOBYTES]
    pytest tests/bench -o python_files='bench_*.py' -s -k parse_linear
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from digest.ingest.parse import parse_bytes

MTIME = datetime(2026, 5, 1, tzinfo=UTC)
HEADER = "new\n\nMar 14\n\n"
ABSTRACT = (
    "We study one thing in depth, across many settings and data sets, "
    "and find that it works well in each of them. "
) * 3
TAILS = {
    "letters": lambda n: "x" * n,
    "a link": lambda n: "https://" + "x" * n,
    "www runs": lambda n: "www" * (n // 3),
    "dots": lambda n: "." * n + "x",
}


def hostile(size: int, tail: str) -> bytes:
    return f"{HEADER}One\n\n{ABSTRACT}\n\nTwo\n\n{ABSTRACT} {TAILS[tail](size)}\n".encode()


def ordinary(size: int) -> bytes:
    count = max(1, size // (len(ABSTRACT) + 20))
    papers = "\n\n".join(f"Paper {i}\n\n{ABSTRACT}" for i in range(count))
    return f"{HEADER}{papers}\n".encode()


def best_of(data: bytes, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.process_time()
        parse_bytes(data, name="bench.txt", mtime=MTIME)
        times.append(time.process_time() - start)
    return min(times)


def test_parse_linear(kilobytes: int = 200) -> None:
    small, large = kilobytes * 1000, kilobytes * 10_000
    base_small, base_large = best_of(ordinary(small)), best_of(ordinary(large))
    print(f"\nparse time (CPU), n = {small:,} and 10n = {large:,} bytes; linear: ratio <= 20")
    print(f"{'dump':<24}{'n':>10}{'10n':>10}{'ratio':>8}")
    print(
        f"{'ordinary (baseline)':<24}{base_small:>9.3f}s{base_large:>9.3f}s"
        f"{base_large / max(base_small, 1e-6):>8.1f}"
    )
    worst = 0.0
    for tail in TAILS:
        t_small, t_large = best_of(hostile(small, tail)), best_of(hostile(large, tail))
        ratio = t_large / max(t_small, 1e-6)
        worst = max(worst, ratio)
        print(f"{'last word: ' + tail:<24}{t_small:>9.3f}s{t_large:>9.3f}s{ratio:>8.1f}")
    assert worst <= 20, f"parsing is not linear: 10x the input took {worst:.0f}x the time"


if __name__ == "__main__":
    test_parse_linear(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
