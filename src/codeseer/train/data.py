"""The data of a ``codeseer train`` run: pairs in, training rows (with their negatives) out.

Kept apart from the training loop because it is the part a run must reproduce exactly: which pairs are
selected, in what order, with which hard / random negatives and grades. The rows are saved to
``train_pairs.jsonl`` so that ``--resume`` reads the very same rows back instead of mining again.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeseer.errors import CodeseerError
from codeseer.jsonl import iter_jsonl_objects
from codeseer.models.tasks import DEFAULT_TASK, DOCUMENT, QUERY, get_task
from codeseer.train.config import TrainConfig
from codeseer.train.losses import edit_similarity, teacher_similarity
from codeseer.train.negatives import mine_hard_negatives, normalise
from codeseer.train.teachers import load_or_encode

PAIRS_FILE = "train_pairs.jsonl"
# mine-git's source: "<owner/name or folder>@<commit>:<path>:<line>" (pairs mined before it wrote "repo")
_MINED_SOURCE = re.compile(r"^([^@\s:]+)@[0-9a-f]{7,40}:")
OASIS_NEEDS_NEGATIVES = "--loss oasis needs hard negatives: pass --hard-negatives N or pairs with \"negatives\""

__all__ = ["PAIRS_FILE", "Rows", "build_rows", "load_pairs", "prefixes", "prepare_rows", "repository_of",
           "select_pairs", "to_dataset", "write_jsonl"]


@dataclass
class Rows:
    """The training rows of a run and what the report says about them."""

    rows: list[dict]
    negatives: int  # negatives per row (every row has exactly this many)
    pairs: int  # selected pairs (before the general ones are mixed in)
    general: int  # general pairs mixed in
    note: dict[str, Any] = field(default_factory=dict)  # the report's "negatives": mining, fill, grades, teacher


# -------------------------------------------------------------------------------------- pairs

def load_pairs(paths: str | Path | Sequence[str | Path], *, what: str = "pairs file") -> list[dict]:
    """Read and check JSONL pairs files; any problem is a one-line CodeseerError naming ``file:line``."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise CodeseerError(f"no {what} given")
    pairs: list[dict] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise CodeseerError(f"{what} not found: {path}")
        count = 0
        for line_no, obj in iter_jsonl_objects(path, CodeseerError):
            _check_pair(obj, f"{path}:{line_no}")
            pairs.append(obj)
            count += 1
        if count == 0:
            raise CodeseerError(f"{what} is empty: {path}")
    return pairs


def _check_pair(obj: dict, where: str) -> None:
    """Check one pair in place (its ``task`` becomes the canonical task name)."""
    for key in ("query", "positive"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise CodeseerError(f"{where}: {key!r} must be a non-empty string")
    try:
        obj["task"] = get_task(obj.get("task") or DEFAULT_TASK).name
    except CodeseerError as exc:
        raise CodeseerError(f"{where}: {exc}") from None
    negatives = obj.get("negatives")
    if negatives is not None and (not isinstance(negatives, list)
                                  or not all(isinstance(n, str) for n in negatives)):
        raise CodeseerError(f"{where}: 'negatives' must be a list of strings")
    grades = obj.get("negative_grades")
    if grades is not None and (not isinstance(grades, list) or len(grades) != len(negatives or [])
                               or not all(isinstance(g, (int, float)) for g in grades)):
        raise CodeseerError(f"{where}: 'negative_grades' must be a list of numbers, one per negative")


def select_pairs(cfg: TrainConfig) -> tuple[list[dict], list[dict]]:
    """The pairs to train on (``--kinds``, then a seeded ``--max-pairs`` sample) and the general ones."""
    pairs = load_pairs(cfg.pairs)
    if cfg.kinds:
        wanted = {k.strip() for k in cfg.kinds if k.strip()}
        pairs = [p for p in pairs if p.get("kind") in wanted]
        if not pairs:
            raise CodeseerError(f"no pairs of kind {', '.join(sorted(wanted))} in {', '.join(cfg.pairs)}")
    if cfg.max_pairs is not None and len(pairs) > cfg.max_pairs:
        pairs = random.Random(f"{cfg.seed}\0pairs").sample(pairs, cfg.max_pairs)
    general = load_pairs(cfg.mix_general, what="--mix-general file") if cfg.mix_general else []
    return pairs, general


def prefixes(recipe) -> Callable[[str, str], str]:
    """``prefix(task, role)``: the recipe's prefix for a task's queries or documents ("" without a recipe)."""
    def prefix(task: str, role: str) -> str:
        return recipe.prefix(task, role) if recipe is not None else ""

    return prefix


def write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


# ---------------------------------------------------------------------------------------- rows

def build_rows(cfg: TrainConfig, pairs: list[dict], general: list[dict], model, recipe, rng: random.Random,
               say: Callable[[str], None]) -> Rows:
    """The run's rows: the pairs and a share of general ones, shuffled, each with exactly k negatives
    (mined, then topped up at random) and, for ``--loss oasis``, their grades; saved to ``train_pairs.jsonl``.
    With ``--resume`` the saved rows are read back instead (same rows, same order)."""
    n_general = 0
    if general and cfg.mix_fraction > 0:
        n_general = min(len(general), round(len(pairs) * cfg.mix_fraction / (1 - cfg.mix_fraction)))
        general = rng.sample(general, n_general)
    pairs_file = Path(cfg.out) / PAIRS_FILE
    if cfg.resume and pairs_file.is_file():
        rows = load_pairs(pairs_file, what="saved training pairs")
        k = min((len(p.get("negatives") or []) for p in rows), default=0)
        if cfg.loss == "oasis" and k == 0:
            raise CodeseerError(OASIS_NEEDS_NEGATIVES)
        if cfg.loss != "oasis":
            for p in rows:
                p.pop("negative_grades", None)
        return Rows(rows, k, len(pairs), n_general, {"reused": str(pairs_file)})
    rows = [_row(p, "code") for p in pairs] + [_row(p, "general") for p in general]
    rng.shuffle(rows)
    rows, k, note = _with_negatives(cfg, rows, model, recipe, rng, say)
    write_jsonl(pairs_file, rows)
    return Rows(rows, k, len(pairs), n_general, note)


def _with_negatives(cfg: TrainConfig, rows: list[dict], model, recipe, rng: random.Random,
                    say: Callable[[str], None]) -> tuple[list[dict], int, dict[str, Any]]:
    """Fresh rows with their negatives (and grades for oasis), the negatives per row, and the note."""
    k = cfg.hard_negatives
    given = [len(p["negatives"]) for p in rows if p.get("negatives")]
    if k == 0 and given:
        # Pairs that came with negatives (mine-git's same-file functions) keep them; the rest (e.g. mixed
        # general pairs) are topped up at random below rather than costing every row its hard negatives.
        k = min(given)
    if cfg.loss == "oasis" and k == 0:
        raise CodeseerError(OASIS_NEEDS_NEGATIVES)
    note: dict[str, Any] = {}
    if cfg.hard_negatives:
        t0 = time.perf_counter()
        prefix = prefixes(recipe)
        say(f"mining {cfg.hard_negatives} hard negatives per pair from {cfg.negatives_from} ...")
        rows = mine_hard_negatives(
            rows, cfg.hard_negatives, source=cfg.negatives_from, margin=cfg.margin, model=model,
            query_prefixes=[prefix(p["task"], QUERY) for p in rows],
            doc_prefixes={t: prefix(t, DOCUMENT) for t in {p["task"] for p in rows}},
        )
        note.update(source=cfg.negatives_from, margin=cfg.margin, seconds=round(time.perf_counter() - t0, 2),
                    mined=sum(len(p["negatives"]) for p in rows))
    if k:
        note["random_fill"] = _fill_negatives(rows, k, rng)
    else:
        for p in rows:
            p.pop("negatives", None)
            p.pop("negative_grades", None)
    if cfg.loss == "oasis":
        t0 = time.perf_counter()
        _grade(rows, cfg.grades, model, recipe)
        note["grades"] = cfg.grades
        note["grade_seconds"] = round(time.perf_counter() - t0, 2)
    else:
        for p in rows:
            p.pop("negative_grades", None)
    return rows, k, note


def _fill_negatives(pairs: list[dict], k: int, rng: random.Random) -> int:
    """Give every pair exactly ``k`` negatives, topping up with random positives of other pairs."""
    docs = list({normalise(p["positive"]): p["positive"] for p in pairs}.values())
    filled = 0
    for p in pairs:
        negs = list(p.get("negatives") or [])[:k]
        grades = list(p.get("negative_grades") or [])[: len(negs)] if "negative_grades" in p else None
        taken = {normalise(n) for n in negs} | {normalise(p["positive"])}
        tries = 0
        while len(negs) < k and tries < 50 * k:
            tries += 1
            cand = rng.choice(docs)
            if normalise(cand) in taken:
                continue
            negs.append(cand)
            taken.add(normalise(cand))
            filled += 1
            if grades is not None:
                grades.append(None)
        if len(negs) < k:
            raise CodeseerError(f"not enough distinct documents to give every pair {k} negatives; lower --hard-negatives")
        p["negatives"] = negs
        if grades is not None:
            p["negative_grades"] = grades
    return filled


def _grade(rows: list[dict], grades: str, model, recipe) -> None:
    """Fill ``negative_grades`` (similarity of each negative to the positive, in [0, 1]) where missing."""
    todo = [p for p in rows if p.get("negatives") and (not p.get("negative_grades")
                                                       or any(g is None for g in p["negative_grades"]))]
    if grades == "teacher" and todo:
        prefix = prefixes(recipe)
        sims = teacher_similarity(model, [prefix(p["task"], DOCUMENT) + p["positive"] for p in todo],
                                  [[prefix(p["task"], DOCUMENT) + n for n in p["negatives"]] for p in todo])
    else:
        sims = [[edit_similarity(p["positive"], n) for n in p["negatives"]] for p in todo]
    for p, row in zip(todo, sims):
        old = p.get("negative_grades") or [None] * len(row)
        p["negative_grades"] = [round(float(g if g is not None else s), 4) for g, s in zip(old, row)]


# ------------------------------------------------------------------------------------- dataset

def repository_of(pair: dict) -> str | None:
    """The repository a pair was mined from: its ``repo`` field, or mine-git's ``source``; None for others."""
    if pair.get("repo"):
        return str(pair["repo"])
    found = _MINED_SOURCE.match(str(pair.get("source") or ""))
    return found.group(1) if found else None


def _row(pair: dict, source: str) -> dict:
    """A training row: the pair, where it came from (code or general), and its repository if known
    (``--batches repository`` groups by it; ``source`` is overwritten, so it is read first)."""
    repo = repository_of(pair)
    return dict(pair, source=source, **({"repo": repo} if repo else {}))


def prepare_rows(pairs: Sequence[dict], recipe, negatives: int) -> dict[str, list]:
    """Dataset columns: ``anchor``, ``positive``, ``negative_1..k`` with the recipe's prefixes for each
    pair's task (query prefix on the query, document prefix on the code), and ``label`` (the grades
    of the negatives) when the pairs carry ``negative_grades``."""
    prefix = prefixes(recipe)
    cols: dict[str, list] = {"anchor": [], "positive": []}
    for j in range(negatives):
        cols[f"negative_{j + 1}"] = []
    with_grades = negatives > 0 and all("negative_grades" in p for p in pairs)
    if with_grades:
        cols["label"] = []
    for p in pairs:
        task = p.get("task") or DEFAULT_TASK
        q, d = prefix(task, QUERY), prefix(task, DOCUMENT)
        cols["anchor"].append(q + p["query"])
        cols["positive"].append(d + p["positive"])
        for j in range(negatives):
            cols[f"negative_{j + 1}"].append(d + p["negatives"][j])
        if with_grades:
            cols["label"].append([float(g) for g in p["negative_grades"][:negatives]])
    return cols


def to_dataset(cfg: TrainConfig, data: Rows, recipe, base_location: str, say: Callable[[str], None]):
    """The ``datasets.Dataset`` to train on, and for ``--loss distill`` the teachers' vectors of its rows
    (encoded once, or read back from ``out``; noted in ``data.note["teacher"]``)."""
    import torch
    from datasets import Dataset

    columns = prepare_rows(data.rows, recipe, data.negatives)
    teacher_tensors = None
    if cfg.loss == "distill":
        vectors, data.note["teacher"] = load_or_encode(Path(cfg.out), data.rows, data.negatives, cfg.teachers,
                                                       base=base_location, max_seq_length=cfg.max_seq_length,
                                                       progress=cfg.progress, echo=say)
        teacher_tensors = [torch.from_numpy(v) for v in vectors]
        columns["label"] = list(range(len(data.rows)))  # the loss looks each row's teacher vectors up by index
    return Dataset.from_dict(columns), teacher_tensors
