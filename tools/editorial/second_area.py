"""Would sending a reader the papers that are *also* about their area (filed under another
one) raise stability.py's recall without filling letters with other topics? Measures, does
not change anything.

For the state a stability.py run leaves behind (its second workspace: one reader per area,
three issues), each issue's papers are matched again exactly as at publish
(digest.sections.match: the stored areas are checked to come out the same), and for every
reader area A and every paper not already theirs it notes: A's score (A or an area below
it, after neighbour smoothing) as a share of the paper's best score, A's rank, and the
paper's own mentions of A's terms (the matcher calls a paper *weak* on an area it names at
most once, in the abstract only). It prints the papers each reader missed, then what
cross-listing rules "A's score >= X of the best, and not weak on A" would do: papers
added, how many of them the editor filed under the reader's topic (recovered) or another,
and the recall they would give.

Usage: PYTHONPATH=. python tools/editorial/second_area.py /tmp/stability-XXXX
(the workspace whose state has subscribers: stability.py prints none; it is the newer of
the two it makes). Needs the `digest` of this checkout, numpy and scikit-learn.
"""

import collections
import html
import json
import re
import sqlite3
import sys
import unicodedata
from pathlib import Path

import numpy as np

from digest.mail.variants import covers
from digest.sections.areas import bundled
from digest.sections.assign import assign
from digest.sections.match import _bm25, assignable, match_areas, paper_terms, term_index, words

HERE = Path(__file__).resolve().parent


def fold(s: str) -> str:
    return re.sub(r"\W+", " ", unicodedata.normalize("NFKC", html.unescape(s)).casefold()).strip()


class Paper:
    def __init__(self, title: str, abstract: str) -> None:
        self.title, self.abstract = title, abstract


def main() -> None:
    db = sqlite3.connect(f"{sys.argv[1]}/state/digest.db")
    with open(HERE / "sections_dev.tsv", encoding="utf-8") as f:
        pairs = (line.rstrip("\n").split("\t")[:2] for line in list(f)[1:])
        editor = {fold(t): s for t, s in pairs}
    voc, index = bundled(), term_index(bundled())
    take, allowed = covers(voc), np.array(assignable(voc))
    query = (
        "select p.title, p.abstract, i.area_slug, i.section_slug from digest_items i join papers "
        "p on p.id = i.paper_id join digests d on d.id = i.digest_id where d.issue = ?"
    )
    issues = [[*db.execute(query, (n,))] for (n,) in db.execute("select issue from digests")]
    # the reader of each editor topic, as stability.py picks it (all papers in one cut)
    whole = assign([Paper(t, a) for items in issues for t, a, _, _ in items], [], vocabulary=voc)
    landed = {fold(p.title): s.slug for s in whole for p in s.papers}
    topics = collections.defaultdict(list)
    for t, s in editor.items():
        topics[s].append(t)
    pick = {}
    for s, titles in topics.items():
        got = collections.Counter(landed[t] for t in titles if t in landed)
        if len(titles) >= 6 and got and not re.match(r"(?i)^(other|misc|more)", s):
            pick[s] = got.most_common(1)[0][0]
    readers = {json.loads(t)[0] for (t,) in db.execute("select themes from subscribers")}
    rows = []
    for n, items in enumerate(issues, 1):
        titles, abstracts = [r[0] for r in items], [r[1] for r in items]
        found = match_areas(titles, abstracts, voc)
        pairs = [(words(t), words(a)) for t, a in zip(titles, abstracts, strict=True)]
        terms = [paper_terms(t, a, index) for t, a in pairs]
        lengths = [len(t) + len(a) for t, a in pairs]
        own = _bm25(terms, lengths, index, len(voc))
        for k, (title, _, area, section) in enumerate(items):
            x = found.area[k]
            if x >= 0 and voc.areas[x].slug != area:
                got = voc.areas[x].slug
                sys.exit(f"issue {n}: {title[:50]!r} is stored under {area}, matched {got}")
            for reader in sorted(readers):
                ids = [i for i, a in enumerate(voc.areas) if a.slug in take(reader)]
                score, best = found.scores[k][ids].max(), found.scores[k].max()
                in_title = in_abstract = 0
                for t, (a, b) in terms[k].items():
                    if set(index.areas_of[t]) & set(ids):
                        in_title, in_abstract = in_title + a, in_abstract + b
                rows.append(
                    {
                        "issue": n, "title": title, "reader": reader, "area": area,
                        "mine": area in take(reader) or section in take(reader),
                        "related": pick.get(editor.get(fold(title), "")) == reader,
                        "editor": editor.get(fold(title), "?"),
                        "ratio": float(score / best) if best > 0 else 0.0,
                        "rank": int((found.scores[k] > score).sum()) + 1,
                        "weak": in_title == 0 and in_abstract <= 1,
                        "own": float(own[k][ids].max()),
                        "own_best": float((own[k] * allowed).max()),
                    }
                )  # fmt: skip
    report(rows, len(readers) * len(issues))


def report(rows: list[dict], reader_issues: int) -> None:
    total = sum(o["related"] for o in rows)
    base = sum(o["related"] and o["mine"] for o in rows)
    missed = [o for o in rows if o["related"] and not o["mine"]]
    for o in sorted(missed, key=lambda o: (o["reader"], -o["ratio"])):
        print(
            f"missed  {o['reader'][:26]:26s} #{o['issue']} rank {o['rank']:2d} "
            f"{o['ratio']:.2f} of best{' weak' if o['weak'] else '     '}  "
            f"filed {o['area'][:24]:24s} "
            f"{o['title'][:60]}"
        )
    ranks = collections.Counter(min(o["rank"], 5) for o in missed)
    print(
        f"{len(missed)} missed: reader's area 2nd {ranks[2]}, 3rd {ranks[3]}, 4th {ranks[4]}, "
        f"lower {ranks[5]}; weak on it {sum(o['weak'] for o in missed)}"
    )
    own = sum(o["mine"] for o in rows) / reader_issues
    print(f"recall now {base}/{total} = {base / total:.3f}; own papers/reader/issue {own:.2f}")
    for x in (0.5, 0.6, 0.7, 0.8, 0.9):
        for name, rule in (
            ("smoothed", lambda o, x=x: o["ratio"] >= x),
            ("own+smoothed", lambda o, x=x: o["ratio"] >= x and o["own"] >= x * o["own_best"] > 0),
        ):
            added = [o for o in rows if not o["mine"] and not o["weak"] and rule(o)]
            hit = sum(o["related"] for o in added)
            other = sum(not o["related"] and o["editor"] not in ("Other", "?") for o in added)
            print(
                f"rule {name:12s} >= {x:.1f} and not weak: adds {len(added):3d} "
                f"({len(added) / reader_issues:.2f}/reader/issue): {hit:2d} of the reader's topic, "
                f"{other:2d} of another, {len(added) - hit - other} Other; recall "
                f"{(base + hit) / total:.3f}"
            )


if __name__ == "__main__":
    main()
