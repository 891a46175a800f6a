"""How often a SIGKILL mid-send duplicates a message (the window between the SMTP
server's acceptance and our database write). Random kills of a real `digest send`
against a test server that takes 2 ms to accept each message; the 1-connection run
is the baseline for the parallel one.

    python tests/bench/bench_crash_window.py [KILLS] [CONNECTIONS...]
    pytest tests/bench -o python_files='bench_*.py' -s -k crash
"""

from __future__ import annotations

import os
import sys

from tests.support.crash import measure_duplicates


def test_crash_window() -> None:
    kills = int(os.environ.get("DIGEST_TEST_CRASH_KILLS", "10"))
    for connections in (1, 4):
        result = measure_duplicates(kills, connections=connections)
        print(f"\n{connections} connection(s): {result}")
        assert result["duplicates"] <= result["kills_mid_send"] * connections


if __name__ == "__main__":
    kills = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    for connections in [int(c) for c in sys.argv[2:]] or [1, 4]:
        print(f"{connections} connection(s):", measure_duplicates(kills, connections=connections))
