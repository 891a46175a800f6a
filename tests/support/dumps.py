"""Dump files: the bundled samples, and hand-made ones in the format of the real dumps."""

from __future__ import annotations

import os
import time
from pathlib import Path

from digest.ingest.folder import read_dump
from digest.ingest.parse import Listing, parse_bytes

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "examples" / "dumps"
SAMPLE_FILES = sorted(SAMPLES.glob("*.txt"))


def write_dump(path: Path, titles_abstracts: list[tuple[str, str]], date: str = "Apr 2") -> Path:
    """A dump with the real dumps' header lines, listing date and papers, last modified
    an hour ago (`send` leaves a file modified in the last seconds alone)."""
    header = "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\n"
    body = "\n\n".join(f"{t}\n\n{a}" for t, a in titles_abstracts)
    path.write_text(f"{header}byAK and the research community\n\n{date}\n\n{body}\n", "utf-8")
    settled = time.time() - 3600
    os.utime(path, (settled, settled))
    return path


def parse_dump(path: str | os.PathLike[str]) -> Listing:
    """Read and parse one file as ingesting does; the listing year comes from its mtime."""
    data, mtime = read_dump(path)
    return parse_bytes(data, name=os.fspath(path), mtime=mtime)
