"""The training set of the commit-trained default model, from `codeseer data mine-git` output.

The recipe (issue 23), step by step, so the counts in the model card can be reproduced:

1. every pair of the mine-git files, grouped by repository (``source`` = ``owner/name@commit:path:line``);
2. at most ``--per-repo`` pairs per repository (seeded sample), so a few long histories do not make the
   model theirs;
3. ``--negatives`` same-file hard negatives per pair (mine-git writes them nearest first); positives and
   negatives over ``--max-chars`` (a whole class or a header's namespace, not a function) are dropped;
4. **consistency filter** (SweRank, 2025): the base model ranks each pair's positive among the positives
   of ``--pool`` sampled pairs of its repository (the other functions of the same commit aside); a pair is
   kept only when the positive is in the top ``--top-k``
   (20 in the paper: without the filter, fine-tuning on commit text hurt). Commit subjects such as
   "fix pyright findings" that name nothing in the code they touched are dropped this way;
5. general pairs (``codeseer data mine`` over site-packages, against forgetting) lose every package
   whose name hashes into the exclusion list (evaluation repositories).

Writes ``commits.jsonl`` and ``general.jsonl`` to ``--out`` with ``counts.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np


def repo_of(pair: dict) -> str:
    return pair["source"].split("@", 1)[0].lower()


def read_pairs(files: list[Path], max_chars: int, negatives: int) -> tuple[dict[str, list[dict]], Counter]:
    """Pairs by repository, long positives dropped and negatives cut as they are read (the files are GBs)."""
    by_repo: dict[str, list[dict]] = defaultdict(list)
    mined: Counter = Counter()
    for file in files:
        with file.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    pair = json.loads(line)
                except json.JSONDecodeError:  # the last line of an interrupted run
                    continue
                mined[repo_of(pair)] += 1
                if len(pair["positive"]) > max_chars:  # a whole class or a header's namespace
                    continue
                pair["negatives"] = [n for n in pair.get("negatives") or [] if len(n) <= max_chars][:negatives]
                by_repo[repo_of(pair)].append(pair)
    return by_repo, mined


def package_names(module: str) -> set[str]:
    """The names a site-packages folder goes by: itself, without a leading underscore, its distributions."""
    from importlib.metadata import packages_distributions

    names = {module, module.lstrip("_")}
    names.update(packages_distributions().get(module, []))
    return {n.lower() for n in names}


def general_pairs(path: Path, digests: set[str]) -> tuple[list[dict], Counter]:
    kept, dropped = [], Counter()
    verdict: dict[str, bool] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        pair = json.loads(line)
        match = re.search(r"site-packages/([^/]+)/", pair.get("source", ""))
        module = match.group(1) if match else ""
        if module not in verdict:
            verdict[module] = any(hashlib.sha256(n.encode()).hexdigest() in digests for n in package_names(module))
        if verdict[module]:
            dropped[module] += 1
        else:
            kept.append(pair)
    return kept, dropped


def ranks(pairs: list[dict], embedder, pool: int) -> list[int]:
    """Rank of each pair's positive (1 = first) by the base model among the positives of a random pool of
    ``pool`` pairs of its repository; the other functions the same commit changed do not count against it."""
    queries = embedder.encode_queries([p["query"] for p in pairs])
    docs = embedder.encode_documents([p["positive"] for p in pairs])
    query_ids = np.unique([p["query"] for p in pairs], return_inverse=True)[1]
    out: list[int] = []
    for start in range(0, len(pairs), pool):
        part = slice(start, start + pool)
        scores = queries[part] @ docs[part].T
        same = query_ids[part, None] == query_ids[None, part]
        beaten = ((scores > np.diag(scores)[:, None]) & ~same).sum(axis=1)
        out.extend(int(b) + 1 for b in beaten)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mined", nargs="+", type=Path, help="mine-git output files (JSON lines)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--general", type=Path, help="`codeseer data mine` pairs to clean of excluded packages")
    ap.add_argument("--exclude-names", type=Path, required=True, help="sha256 digests of excluded names")
    ap.add_argument("--per-repo", type=int, default=400)
    ap.add_argument("--negatives", type=int, default=1)
    ap.add_argument("--model", default="codeseer-code-mini", help="base model of the consistency filter")
    ap.add_argument("--top-k", type=int, default=20, help="keep pairs whose positive the base ranks in the top K")
    ap.add_argument("--pool", type=int, default=400, help="candidates per ranking: positives of this many pairs")
    ap.add_argument("--max-chars", type=int, default=6000, help="drop positives (and negatives) longer than this")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from codeseer.data.mine_git import load_excluded_names
    from codeseer.models import load_embedder
    from codeseer.train.data import write_jsonl

    rng = random.Random(args.seed)
    digests = load_excluded_names(args.exclude_names)
    args.out.mkdir(parents=True, exist_ok=True)
    by_repo, mined = read_pairs(args.mined, args.max_chars, args.negatives)
    refused = sorted(r for r in by_repo if hashlib.sha256(r.encode()).hexdigest() in digests)
    if refused:  # mine-git refuses these already; a second check costs nothing
        sys.exit(f"excluded repositories in the input: {refused}")
    embedder = load_embedder(args.model, backend="auto", max_seq_length=128)
    counts: dict = {"repositories": {}, "pairs_in": 0, "sampled": 0, "kept": 0, "rank_histogram": Counter()}
    languages, kinds, per_language_repos = Counter(), Counter(), Counter()
    t0 = time.perf_counter()
    with (args.out / "commits.jsonl").open("w", encoding="utf-8") as fh:
        for number, repo in enumerate(sorted(by_repo)):
            pairs = by_repo[repo]
            counts["pairs_in"] += mined[repo]
            if not pairs:
                continue
            sample = rng.sample(pairs, min(args.per_repo, len(pairs)))
            ranked = ranks(sample, embedder, args.pool)
            kept = [p for p, r in zip(sample, ranked) if r <= args.top_k]
            for r in ranked:
                counts["rank_histogram"]["1" if r == 1 else "2-5" if r <= 5 else "6-20" if r <= 20 else ">20"] += 1
            language = Counter(p["language"] for p in pairs).most_common(1)[0][0]
            per_language_repos[language] += 1
            counts["repositories"][repo] = {"language": language, "mined": mined[repo], "short": len(pairs),
                                            "sampled": len(sample), "kept": len(kept)}
            counts["sampled"] += len(sample)
            counts["kept"] += len(kept)
            for p in kept:
                languages[p["language"]] += 1
                kinds[p["kind"]] += 1
                fh.write(json.dumps(p, ensure_ascii=False) + "\n")
            print(f"[{number + 1}/{len(by_repo)}] {repo}: {len(kept)}/{len(sample)} kept "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    counts.update(repositories_per_language=dict(per_language_repos), pairs_per_language=dict(languages),
                  pairs_per_kind=dict(kinds), per_repo=args.per_repo, pool=args.pool, negatives=args.negatives,
                  max_chars=args.max_chars, top_k=args.top_k, filter_model=args.model, seconds=round(time.perf_counter() - t0, 1))
    counts["rank_histogram"] = dict(counts["rank_histogram"])
    if args.general:
        general, dropped = general_pairs(args.general, digests)
        write_jsonl(args.out / "general.jsonl", general)
        counts["general"] = {"kept": len(general), "dropped_excluded_packages": dict(dropped)}
    (args.out / "counts.json").write_text(json.dumps(counts, indent=2) + "\n")
    print(json.dumps({k: v for k, v in counts.items() if k != "repositories"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
