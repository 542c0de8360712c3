"""What showing code first buys for "how does X work" questions, measured in one run.

``codeseer search`` shows the k best code hits first and the best 3 docs and tests hits after them
(``--flat``: one list by score). Questions in the words of a person asking how something works
(``bench/questions/click-how.jsonl``, written for this benchmark: 15 questions about click, each with
the source file(s) that implement the answer) are run both ways on the click snapshot of
``../shared/datasets/repos-dev``; the score is the rank of the first hit from an answer file (MRR@10)
and how many of the first 5 hits are code.

Usage: python bench/grouped_search.py [--questions FILE] [--repo DIR] [--json OUT]
(cosqa-dev's corpus has only functions, no docs or tests, so showing code first changes nothing there.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=REPO_ROOT / "bench" / "questions" / "click-how.jsonl")
    parser.add_argument("--repo", type=Path, help="a repository folder (default: repos-dev's click snapshot)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from codeseer.api import Index
    from codeseer.eval.repo import RepoTask, unpack_snapshot
    from codeseer.eval.significance import paired_test

    repo = args.repo or unpack_snapshot(RepoTask(
        "click", (), snapshot=REPO_ROOT.parent / "shared" / "datasets" / "repos-dev" / "click" / "snapshot.tar.gz"),
        Path(tempfile.gettempdir()) / "codeseer-bench")
    idx = Index.build(repo)
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    rows = {"flat (by score)": [], "code first (default)": []}
    code_top5 = {"flat (by score)": [], "code first (default)": []}
    for q in questions:
        for label, first in (("flat (by score)", False), ("code first (default)", True)):
            hits = idx.search(q["text"], k=10, code_first=first)
            rank = next((n for n, h in enumerate(hits[:10], 1) if h.path in q["files"]), None)
            rows[label].append(1 / rank if rank else 0.0)
            code_top5[label].append(sum(h.file_kind not in ("docs", "test") for h in hits[:5]))
    test = paired_test(rows["flat (by score)"], rows["code first (default)"])
    print(f"{len(questions)} questions on {repo.name}: first hit from an answer file (MRR@10), code hits in the first 5")
    print(f"{'search':24s} {'MRR@10':>7s} {'code in top 5':>14s}")
    out = {}
    for label in rows:
        mrr = 100 * sum(rows[label]) / len(rows[label])
        code = sum(code_top5[label]) / len(code_top5[label])
        print(f"{label:24s} {mrr:7.1f} {code:14.1f}")
        out[label] = {"mrr@10": round(mrr, 2), "code_in_top5": round(code, 2)}
    print(f"difference {100 * test.mean_diff:+.1f} (95% CI {100 * test.ci_low:+.1f} … {100 * test.ci_high:+.1f}, "
          f"paired randomization p {test.p_value:.3f})")
    if args.json:
        args.json.write_text(json.dumps({"questions": len(questions), "rows": out, "p": test.p_value,
                                         "diff": test.mean_diff}, indent=2) + "\n")


if __name__ == "__main__":
    main()
