"""Do areas hold from issue to issue? The three sample dumps go in one at a time (three issues).

1. One `digest themes --format json` over all three dumps gives, for each of the editor's sections in
   sections_dev.tsv (six papers or more, not "Other"), the slug most of its papers land on: a reader who
   cares about that topic picks that area.
2. A fresh state gets one subscriber per such area (`subscribers add ADDR --themes SLUG`), then the three
   dumps, one `digest send` each.
3. Over the three issues:
   recall      of each topic's published papers, the share that reached its reader's e-mails;
   slugs/topic distinct section slugs each topic was printed under (1.0: perfectly stable);
   pooled      ARI / NMI of the sections (by slug) pooled over the issues, against the editor.

Usage: python stability.py [--digest PATH_TO_DIGEST]   (default: `digest` on PATH, else .venv/bin/digest)
Needs scikit-learn. The last line is 'stability: recall=… slugs/topic=… pooledARI=… pooledNMI=… sections/issue=…'.
"""

import collections
import email
import email.policy
import html
import json
import mailbox
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

HERE = Path(__file__).resolve().parent
DUMPS = sorted((HERE.parents[1] / "examples" / "dumps").glob("[0-9][0-9][0-9]_*.txt"))
CONF = """[digest]
dumps_dir = "dumps"
state_dir = "state"
base_url = "https://digest.example.org"
min_papers = 1

[email]
transport = "maildir"
from = "Digest <digest@example.org>"
"""


def fold(s: str) -> str:
    return re.sub(r"\W+", " ", unicodedata.normalize("NFKC", html.unescape(s)).casefold()).strip()


def digest_cmd() -> str:
    if "--digest" in sys.argv:
        return sys.argv[sys.argv.index("--digest") + 1]
    return shutil.which("digest") or str(Path(".venv/bin/digest").resolve())


DG = digest_cmd()


def run(ws: str, *args: str) -> subprocess.CompletedProcess:
    p = subprocess.run([DG, *args], cwd=ws, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        sys.exit(f"digest {' '.join(args)} failed: {(p.stderr or p.stdout)[-400:]}")
    return p


def workspace() -> str:
    ws = tempfile.mkdtemp(prefix="stability-")
    os.makedirs(f"{ws}/dumps")
    Path(ws, "digest.toml").write_text(CONF)
    return ws


def drop(ws: str, path: Path) -> None:
    dst = f"{ws}/dumps/{path.name}"
    shutil.copy2(path, dst)
    os.utime(dst, (time.time() - 600,) * 2)  # a complete file, dropped a while ago


def sections(ws: str) -> dict[str, str]:
    rows = json.loads(run(ws, "themes", "--format", "json", "--no-reasons").stdout)
    return {fold(r["title"]): r.get("slug") or r["section"] for r in rows}


def main() -> None:
    with open(HERE / "sections_dev.tsv", encoding="utf-8") as f:
        editor = {fold(t): s for t, s in (line.rstrip("\n").split("\t")[:2] for line in list(f)[1:])}
    topics = collections.defaultdict(list)
    for t, s in editor.items():
        topics[s].append(t)

    ws = workspace()
    for d in DUMPS:
        drop(ws, d)
    whole = sections(ws)
    pick = {}
    for s, titles in topics.items():
        got = collections.Counter(whole[t] for t in titles if t in whole)
        if len(titles) >= 6 and got and not re.match(r"(?i)^(other|misc|more)", s):
            slug = got.most_common(1)[0][0]
            if not re.match(r"(?i)^(other|misc|more)", slug):
                pick[s] = slug

    ws = workspace()
    reader = {slug: f"reader{k}@example.org" for k, slug in enumerate(sorted(set(pick.values())))}
    for slug, addr in reader.items():
        run(ws, "subscribers", "add", addr, "--themes", slug)
    published, per_issue = {}, []
    for d in DUMPS:
        drop(ws, d)
        secs = sections(ws)
        run(ws, "send")
        per_issue.append(secs)
        for t, s in secs.items():
            published.setdefault(t, s)

    received = collections.defaultdict(set)
    box = mailbox.Maildir(f"{ws}/state/outbox", create=False)
    for key in box.iterkeys():
        m = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        part = m.get_body(("html",)) or m.get_body(("plain",))
        body = fold(re.sub(r"<[^>]+>", " ", part.get_content())) if part else ""
        addr = email.utils.parseaddr(str(m["To"]))[1]
        received[addr] |= {t for t in published if t in body}

    hit = total = 0
    for s, slug in sorted(pick.items()):
        mine = [t for t in topics[s] if t in published]
        got = [t for t in mine if t in received[reader[slug]]]
        hit, total = hit + len(got), total + len(mine)
        printed = {published[t] for t in mine}
        print(f"  {s[:58]:58s} -> {slug:30s} {len(got)}/{len(mine)} received; printed under {len(printed)} slug(s)")
    common = sorted(set(editor) & set(published))
    x, y = [editor[t] for t in common], [published[t] for t in common]
    spt = [len({published[t] for t in topics[s] if t in published}) for s in pick]
    print(
        f"stability: recall={hit / max(1, total):.2f} slugs/topic={sum(spt) / max(1, len(spt)):.1f} "
        f"pooledARI={adjusted_rand_score(x, y):.3f} pooledNMI={normalized_mutual_info_score(x, y):.3f} "
        f"sections/issue={sum(len(set(s.values())) for s in per_issue) / len(per_issue):.1f}"
    )


if __name__ == "__main__":
    main()
