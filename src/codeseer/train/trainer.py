"""Fine-tune a code embedder on (query, code) pairs: sentence-transformers' trainer with codeseer's recipe.

The recipe (see ``codeseer train --help``):

* pairs from ``codeseer data mine`` (JSON lines ``{"query", "positive", "task", "kind", "language"}``,
  optionally ``"negatives"``), each text given the base model's prefix for its task and role;
* InfoNCE with in-batch negatives at temperature 0.05 (scale 20), GradCache for large batches on a
  CPU, batches without duplicates (a duplicate would be a false in-batch negative);
* optionally BM25 / dense hard negatives with a false-negative margin, the OASIS order term over
  graded negatives, Matryoshka dimensions, frozen lower layers, general pairs mixed in;
* a dev nDCG@10 / MRR@10 every ``eval_every`` steps on a BEIR dev set (cosqa-dev by default),
  checkpoints with a rotation limit, ``resume`` from the last one;
* the result: a sentence-transformers folder with float16 safetensors (loaded back as float32),
  ``training_config.json`` and ``train_log.jsonl``, usable as ``codeseer index --model OUT``.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codeseer.errors import CodeseerError
from codeseer.jsonl import iter_jsonl_objects
from codeseer.models.tasks import DEFAULT_TASK, DOCUMENT, QUERY, get_task
from codeseer.train.losses import (
    DEFAULT_GRADE_MARGIN,
    DEFAULT_ORDER_WEIGHT,
    LOSSES,
    build_loss,
    edit_similarity,
    teacher_similarity,
)
from codeseer.train.negatives import DEFAULT_MARGIN, SOURCES, mine_hard_negatives, normalise
from codeseer.train.teachers import load_or_encode

DEV_ENV = "CODESEER_DEV_DATASET"
REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_DEV = REPO_ROOT.parent / "shared" / "datasets" / "cosqa-dev"
CHECKPOINTS = "checkpoints"
LOG_FILE = "train_log.jsonl"
CONFIG_FILE = "training_config.json"
PAIRS_FILE = "train_pairs.jsonl"
GRADES = ("edit", "teacher")

__all__ = ["TrainConfig", "build_dev_evaluator", "default_dev_dataset", "freeze_lower_layers", "load_pairs",
           "prepare_rows", "train"]


@dataclass
class TrainConfig:
    """Every knob of a run; written to ``training_config.json`` as it was used."""

    base: str | None = None
    recipe: str | None = None
    loss: str = "infonce"
    batch_size: int = 32
    mini_batch_size: int | None = None
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    epochs: float = 1.0
    max_steps: int | None = None
    max_seq_length: int = 256
    matryoshka_dims: list[int] | None = None
    scale: float = 20.0
    hard_negatives: int = 0
    negatives_from: str = "bm25"
    margin: float = DEFAULT_MARGIN
    grades: str = "edit"
    order_weight: float = DEFAULT_ORDER_WEIGHT
    grade_margin: float = DEFAULT_GRADE_MARGIN
    freeze_layers: int = 0
    mix_general: list[str] | None = None
    mix_fraction: float = 0.2
    eval_every: int = 200
    save_every: int | None = None
    save_total_limit: int = 2
    log_every: int = 10
    dev_dataset: str | None = None
    dev_max_docs: int | None = 2000
    dev_max_queries: int | None = None
    eval_at_start: bool = True
    seed: int = 0
    resume: bool = False
    pairs: list[str] = field(default_factory=list)
    kinds: list[str] | None = None
    max_pairs: int | None = None
    merge_base: float = 1.0
    teachers: list[str] | None = None
    distill_weight: float = 1.0


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
            where = f"{path}:{line_no}"
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
            pairs.append(obj)
            count += 1
        if count == 0:
            raise CodeseerError(f"{what} is empty: {path}")
    return pairs


def _prefixes(recipe) -> Callable[[str, str], str]:
    def prefix(task: str, role: str) -> str:
        return recipe.prefix(task, role) if recipe is not None else ""

    return prefix


def prepare_rows(pairs: Sequence[dict], recipe, negatives: int) -> dict[str, list]:
    """Dataset columns: ``anchor``, ``positive``, ``negative_1..k`` with the recipe's prefixes for each
    pair's task (query prefix on the query, document prefix on the code), and ``label`` (the grades
    of the negatives) when the pairs carry ``negative_grades``."""
    prefix = _prefixes(recipe)
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


# --------------------------------------------------------------------------------------- model

def _load_model(base: str | None, recipe_name: str | None, max_seq_length: int, device: str | None):
    import torch

    from codeseer.models.backends import local_folder
    from codeseer.models.embedder import MINILM_MODEL, resolve_model
    from codeseer.models.registry import find_recipe, get_recipe

    try:  # the recipe starts from all-MiniLM-L6-v2, not from the default model it produced
        resolved = resolve_model(base or MINILM_MODEL)
        folder = local_folder(resolved.location)
    except CodeseerError as exc:
        raise CodeseerError(f"base model not found: {base} ({exc})") from None
    recipe = get_recipe(recipe_name) if recipe_name else find_recipe(resolved.name)
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    kwargs = dict(device=device, model_kwargs={"dtype": torch.float32},
                  trust_remote_code=bool(recipe and recipe.trust_remote_code))
    try:
        if (folder / "modules.json").is_file():
            model = SentenceTransformer(str(folder), **kwargs)
        else:  # a plain transformers folder: pool the way its recipe says (mean without one)
            modes = {"mean": "mean", "cls": "cls", "last": "lasttoken"}
            mode = modes.get(recipe.pooling, "mean") if recipe else "mean"
            encoder = Transformer(str(folder), max_seq_length=max_seq_length, model_args={"dtype": torch.float32})
            pool = Pooling(encoder.get_embedding_dimension(), pooling_mode=mode)
            model = SentenceTransformer(modules=[encoder, pool], device=device)
    except Exception as exc:  # a folder that is not a model
        raise CodeseerError(f"could not load base model {resolved.name}: {exc}") from exc
    model.max_seq_length = max_seq_length
    return model, resolved, recipe


def _encoder_parts(model):
    auto = model[0].auto_model
    embeddings = getattr(auto, "embeddings", None) or getattr(auto, "embed_tokens", None)
    if embeddings is None and hasattr(auto, "get_input_embeddings"):
        embeddings = auto.get_input_embeddings()
    for path in ("encoder.layer", "layers", "encoder.block", "transformer.layer", "encoder.layers"):
        obj = auto
        for attr in path.split("."):
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if obj is not None:
            return embeddings, list(obj)
    raise CodeseerError(f"--freeze-layers: cannot find the layers of {type(auto).__name__}")


def freeze_lower_layers(model, n: int) -> dict[str, int]:
    """Freeze the token embeddings and the first ``n`` transformer layers; returns parameter counts."""
    if n <= 0:
        total = sum(p.numel() for p in model.parameters())
        return {"frozen_parameters": 0, "trainable_parameters": total, "layers": 0}
    embeddings, layers = _encoder_parts(model)
    if n > len(layers):
        raise CodeseerError(f"--freeze-layers {n}: the model has only {len(layers)} layers")
    for module in [embeddings, *layers[:n]]:
        for p in module.parameters():
            p.requires_grad_(False)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"frozen_parameters": frozen, "trainable_parameters": trainable, "layers": len(layers)}


# ------------------------------------------------------------------------------------------ dev

def default_dev_dataset() -> Path | None:
    """``$CODESEER_DEV_DATASET``, else ``../shared/datasets/cosqa-dev`` next to the repository, if present."""
    env = os.environ.get(DEV_ENV)
    if env:
        return None if env.lower() in ("none", "off", "") else Path(env)
    return DEFAULT_DEV if DEFAULT_DEV.is_dir() else None


DEV_SAMPLE_SEED = 0  # fixed, not the run's --seed: runs with different seeds must be scored on one subset


def build_dev_evaluator(path: str | Path, recipe, *, max_docs: int | None, max_queries: int | None,
                        seed: int = DEV_SAMPLE_SEED, batch_size: int = 64):
    """An InformationRetrievalEvaluator on a BEIR folder; the corpus is subsampled to ``max_docs``
    documents, always keeping every document relevant to a kept query."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    from codeseer.eval.beir import doc_text, load_beir

    root = Path(path)
    split = "dev" if (root / "qrels" / "dev.tsv").is_file() else "test"
    try:
        ds = load_beir(root, split=split)
    except (OSError, ValueError) as exc:
        raise CodeseerError(f"dev dataset: {exc}") from None
    rng = random.Random(seed)
    qids = sorted(ds.queries)
    if max_queries and len(qids) > max_queries:
        qids = sorted(rng.sample(qids, max_queries))
    relevant = {q: {d for d, g in ds.qrels[q].items() if g > 0 and d in ds.corpus} for q in qids}
    qids = [q for q in qids if relevant[q]]
    if not qids:
        raise CodeseerError(f"dev dataset {root}: no query has a relevant document in the corpus")
    keep = set().union(*relevant.values())
    others = sorted(set(ds.corpus) - keep)
    if max_docs is not None and len(keep) + len(others) > max_docs:
        others = rng.sample(others, max(0, max_docs - len(keep)))
    doc_ids = sorted(keep) + sorted(others)
    prefix = _prefixes(recipe)
    evaluator = InformationRetrievalEvaluator(
        queries={q: ds.queries[q] for q in qids},
        corpus={d: doc_text(ds.corpus[d]) for d in doc_ids},
        relevant_docs={q: relevant[q] for q in qids},
        mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 10], precision_recall_at_k=[10], map_at_k=[100],
        batch_size=batch_size, name="dev", write_csv=False,
        query_prompt=prefix(ds.task, QUERY) or None, corpus_prompt=prefix(ds.task, DOCUMENT) or None,
    )
    info = {"dataset": str(root), "name": ds.name, "task": ds.task, "split": split, "queries": len(qids),
            "docs": len(doc_ids), "docs_total": len(ds.corpus)}
    return evaluator, info


def _pick(metrics: dict, suffix: str) -> float | None:
    for key, value in metrics.items():
        if key.endswith(suffix) and isinstance(value, (int, float)):
            return float(value)
    return None


# ------------------------------------------------------------------------------------ callback

def _callback_class():
    from transformers import TrainerCallback

    class JsonlLog(TrainerCallback):
        """Append one JSON line per log event (train loss / lr, dev metrics) to ``train_log.jsonl``."""

        def __init__(self, path: Path, offset: float, echo: Callable[[str], None] | None) -> None:
            self.path = path
            self.offset = offset  # elapsed seconds of the runs this one resumes
            self.start = time.perf_counter()
            self.echo = echo
            self.rows: list[dict] = []

        def elapsed(self) -> float:
            return round(self.offset + time.perf_counter() - self.start, 3)

        def write(self, row: dict) -> None:
            self.rows.append(row)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            row: dict[str, Any] = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
            if "loss" in logs:
                row.update(kind="train", loss=float(logs["loss"]), lr=float(logs.get("learning_rate", 0.0)))
                if "grad_norm" in logs:
                    row["grad_norm"] = float(logs["grad_norm"])
            elif any(k.endswith("_ndcg@10") for k in logs):
                row.update(kind="eval", **{"ndcg@10": _pick(logs, "_ndcg@10"), "mrr@10": _pick(logs, "_mrr@10"),
                                           "recall@10": _pick(logs, "_recall@10")})
                if self.echo:
                    self.echo(f"step {state.global_step}: dev nDCG@10 {row['ndcg@10']:.4f}  MRR@10 {row['mrr@10']:.4f}")
            else:
                return
            row["elapsed"] = self.elapsed()
            self.write(row)

    return JsonlLog


# --------------------------------------------------------------------------------------- train

def _check_training_extras() -> None:
    """sentence-transformers' trainer needs ``datasets`` and ``accelerate`` (its ``[train]`` extra)."""
    import importlib.util

    missing = [m for m in ("datasets", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise CodeseerError(f"codeseer train needs {' and '.join(missing)}: pip install 'sentence-transformers[train]'")


def _versions() -> dict[str, str]:
    import sentence_transformers
    import torch
    import transformers

    import codeseer

    return {"codeseer": getattr(codeseer, "__version__", "0"), "torch": torch.__version__,
            "transformers": transformers.__version__, "sentence_transformers": sentence_transformers.__version__}


def _save_float16(model, out_dir: Path) -> None:
    """Save ``model`` as a sentence-transformers folder with float16 safetensors; config.json keeps
    ``dtype: float32`` so loaders (sentence-transformers, codeseer) compute in float32 on a CPU."""
    model.half()
    try:
        model.save_pretrained(str(out_dir), safe_serialization=True)
    finally:
        model.float()
    for config in [out_dir / "config.json", *out_dir.glob("*/config.json")]:
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and ("dtype" in data or "torch_dtype" in data):
            data.pop("torch_dtype", None)
            data["dtype"] = "float32"
            config.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def train(base: str | None, pairs_path: str | Path | Sequence[str | Path], out_dir: str | Path, *,
          recipe: str | None = None, loss: str = "infonce", batch_size: int = 32, mini_batch_size: int | None = None,
          lr: float = 2e-5, warmup_ratio: float = 0.1, weight_decay: float = 0.01, epochs: float = 1.0,
          max_steps: int | None = None, max_seq_length: int = 256, matryoshka_dims: Sequence[int] | None = None,
          scale: float = 20.0, hard_negatives: int = 0, negatives_from: str = "bm25", margin: float = DEFAULT_MARGIN,
          grades: str = "edit", order_weight: float = DEFAULT_ORDER_WEIGHT,
          grade_margin: float = DEFAULT_GRADE_MARGIN, freeze_layers: int = 0,
          mix_general: str | Path | Sequence[str | Path] | None = None, mix_fraction: float = 0.2,
          kinds: Sequence[str] | None = None, max_pairs: int | None = None, merge_base: float = 1.0,
          teachers: Sequence[str] | None = None, distill_weight: float = 1.0,
          eval_every: int = 200, save_every: int | None = None, save_total_limit: int = 2, log_every: int = 10,
          dev_dataset: str | Path | None | bool = None, dev_max_docs: int | None = 2000,
          dev_max_queries: int | None = None, eval_at_start: bool = True, seed: int = 0, resume: bool = False,
          device: str | None = None, progress: bool = True,
          echo: Callable[[str], None] | None = None) -> dict:
    """Train ``base`` on the pairs and write the model to ``out_dir``; returns the training report
    (also written to ``out_dir/training_config.json``).

    ``dev_dataset``: a BEIR folder; None = :func:`default_dev_dataset`; False = no dev evaluation.
    ``kinds``: train only on pairs of these kinds (``search``, ``name``, ... from ``codeseer data mine``);
    ``max_pairs``: then a seeded random sample of that many (hard-negative mining time grows with it).
    ``merge_base``: WiSE-FT weight-space ensemble at the end, ``merge_base * trained + (1 - merge_base) * base``
    (1.0: the trained weights as they are): fine-tuning on narrow data forgets, and the average keeps
    most of the gain on the new data with the base's robustness elsewhere (Wortsman et al., 2022).
    ``teachers`` (with ``loss="distill"``): models whose in-batch scores the student learns, as an
    equal-weight ensemble; ``"base"`` names the base model itself (the usual guard against forgetting).
    ``resume``: continue from the newest checkpoint in ``out_dir/checkpoints`` (the mined pairs are
    read back from ``out_dir/train_pairs.jsonl`` so the data order is the same).
    """
    say = echo or (lambda msg: None)
    _check_training_extras()
    loss = (loss or "").strip().lower()
    if loss not in LOSSES:
        raise CodeseerError(f"unknown loss {loss!r}: choose {' or '.join(LOSSES)}")
    if negatives_from not in SOURCES:
        raise CodeseerError(f"unknown --negatives-from {negatives_from!r}: choose bm25 or model")
    if grades not in GRADES:
        raise CodeseerError(f"unknown --grades {grades!r}: choose edit or teacher")
    for name, value in (("--batch-size", batch_size), ("--max-seq-length", max_seq_length)):
        if value < 1:
            raise CodeseerError(f"{name} must be at least 1")
    if mini_batch_size is not None and mini_batch_size < 1:
        raise CodeseerError("--mini-batch-size must be at least 1")
    if hard_negatives < 0 or freeze_layers < 0:
        raise CodeseerError("--hard-negatives and --freeze-layers must be >= 0")
    if max_steps is not None and max_steps < 1:
        raise CodeseerError("--max-steps must be at least 1")
    if not 0 < merge_base <= 1:
        raise CodeseerError("--merge-base must be in (0, 1]")
    if not 0 <= mix_fraction < 1:
        raise CodeseerError("--mix-fraction must be in [0, 1)")
    teachers = [t.strip() for t in teachers or [] if t.strip()]
    if loss == "distill" and not teachers:
        raise CodeseerError("--loss distill needs at least one --teacher MODEL (or 'base')")
    if teachers and loss != "distill":
        raise CodeseerError("--teacher is used by --loss distill only")
    if distill_weight < 0:
        raise CodeseerError("--distill-weight must be >= 0")
    paths = [str(pairs_path)] if isinstance(pairs_path, (str, Path)) else [str(p) for p in pairs_path]
    general_paths = ([] if mix_general is None else [str(mix_general)] if isinstance(mix_general, (str, Path))
                     else [str(p) for p in mix_general])
    pairs = load_pairs(paths)
    if kinds:
        wanted = {k.strip() for k in kinds if k.strip()}
        pairs = [p for p in pairs if p.get("kind") in wanted]
        if not pairs:
            raise CodeseerError(f"no pairs of kind {', '.join(sorted(wanted))} in {', '.join(paths)}")
    if max_pairs is not None:
        if max_pairs < 1:
            raise CodeseerError("--max-pairs must be at least 1")
        if len(pairs) > max_pairs:
            pairs = random.Random(f"{seed}\0pairs").sample(pairs, max_pairs)
    general = load_pairs(general_paths, what="--mix-general file") if general_paths else []

    out = Path(out_dir)
    ckpt_dir = out / CHECKPOINTS
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    if resume and last is None:
        raise CodeseerError(f"--resume: no checkpoint to resume in {ckpt_dir}")
    if not resume and last is not None:
        raise CodeseerError(f"{out} already holds checkpoints of a run: pass --resume to continue it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)

    import torch
    from transformers import set_seed

    set_seed(seed)
    model, resolved, recipe_obj = _load_model(base, recipe, max_seq_length, device)
    frozen = freeze_lower_layers(model, freeze_layers)
    base_state = ({k: v.detach().clone() for k, v in model.state_dict().items()} if merge_base < 1 else None)

    # -- the rows to train on ------------------------------------------------------------------
    n_general = 0
    if general and mix_fraction > 0:
        n_general = min(len(general), round(len(pairs) * mix_fraction / (1 - mix_fraction)))
        general = rng.sample(general, n_general)
    pairs_file = out / PAIRS_FILE
    mined_note: dict[str, Any] = {}
    if resume and pairs_file.is_file():
        rows = load_pairs(pairs_file, what="saved training pairs")
        mined_note["reused"] = str(pairs_file)
    else:
        rows = [dict(p, source="code") for p in pairs] + [dict(p, source="general") for p in general]
        rng.shuffle(rows)
        k = hard_negatives
        if k == 0 and rows and all(p.get("negatives") for p in rows):
            k = min(len(p["negatives"]) for p in rows)  # pairs that came with negatives
        if loss == "oasis" and k == 0:
            raise CodeseerError("--loss oasis needs hard negatives: pass --hard-negatives N or pairs with \"negatives\"")
        if hard_negatives:
            t0 = time.perf_counter()
            prefix = _prefixes(recipe_obj)
            say(f"mining {hard_negatives} hard negatives per pair from {negatives_from} ...")
            rows = mine_hard_negatives(
                rows, hard_negatives, source=negatives_from, margin=margin, model=model,
                query_prefixes=[prefix(p["task"], QUERY) for p in rows],
                doc_prefixes={t: prefix(t, DOCUMENT) for t in {p["task"] for p in rows}},
            )
            mined_note.update(source=negatives_from, margin=margin, seconds=round(time.perf_counter() - t0, 2),
                              mined=sum(len(p["negatives"]) for p in rows))
        for p in rows:
            if not k:
                p.pop("negatives", None)
                p.pop("negative_grades", None)
        if k:
            mined_note["random_fill"] = _fill_negatives(rows, k, rng)
        if loss != "oasis":
            for p in rows:
                p.pop("negative_grades", None)
        if loss == "oasis":
            t0 = time.perf_counter()
            _grade(rows, grades, model, recipe_obj)
            mined_note["grades"] = grades
            mined_note["grade_seconds"] = round(time.perf_counter() - t0, 2)
        _write_jsonl(pairs_file, rows)
    k = min((len(p.get("negatives") or []) for p in rows), default=0)
    if loss == "oasis" and k == 0:
        raise CodeseerError("--loss oasis needs hard negatives: pass --hard-negatives N or pairs with \"negatives\"")
    if loss != "oasis":
        for p in rows:
            p.pop("negative_grades", None)
    from datasets import Dataset

    columns = prepare_rows(rows, recipe_obj, k)
    teacher_tensors = None
    if loss == "distill":
        vectors, mined_note["teacher"] = load_or_encode(out, rows, k, teachers, base=resolved.location,
                                                        max_seq_length=max_seq_length, progress=progress, echo=say)
        teacher_tensors = [torch.from_numpy(v) for v in vectors]
        columns["label"] = list(range(len(rows)))  # the loss looks each row's teacher vectors up by index
    dataset = Dataset.from_dict(columns)

    # -- loss, dev evaluator, arguments --------------------------------------------------------
    loss_module = build_loss(model, loss, mini_batch_size=mini_batch_size, matryoshka_dims=matryoshka_dims,
                             scale=scale, order_weight=order_weight, grade_margin=grade_margin,
                             teacher_vectors=teacher_tensors, distill_weight=distill_weight)
    evaluator, dev_info = None, None
    dev_path = default_dev_dataset() if dev_dataset is None else (None if dev_dataset is False else Path(dev_dataset))
    if not eval_every or eval_every < 0:
        dev_path = None
    if dev_path is not None:
        evaluator, dev_info = build_dev_evaluator(dev_path, recipe_obj, max_docs=dev_max_docs,
                                                  max_queries=dev_max_queries)

    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from transformers import __version__ as hf_version

    steps_per_epoch = max(1, len(dataset) // batch_size)
    total_steps = max_steps or max(1, math.ceil(steps_per_epoch * epochs))
    save_steps = save_every or (eval_every if evaluator is not None else 500)  # the last step is always saved
    warmup = {"warmup_steps": float(warmup_ratio)} if int(hf_version.split(".")[0]) >= 5 else {"warmup_ratio": warmup_ratio}
    use_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    args = SentenceTransformerTrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        weight_decay=weight_decay,
        num_train_epochs=epochs,
        max_steps=max_steps if max_steps else -1,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        eval_strategy="steps" if evaluator is not None else "no",
        eval_steps=eval_every if evaluator is not None else None,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=save_total_limit,
        logging_steps=max(1, log_every),
        logging_first_step=True,
        seed=seed,
        data_seed=seed,
        report_to="none",
        disable_tqdm=not progress,
        dataloader_drop_last=False,
        dataloader_pin_memory=torch.cuda.is_available(),
        bf16=use_bf16,
        **warmup,
    )
    log_path = out / LOG_FILE
    previous_elapsed = 0.0
    if resume and log_path.is_file():
        for line in log_path.read_text(encoding="utf-8").splitlines():
            try:
                previous_elapsed = max(previous_elapsed, float(json.loads(line).get("elapsed", 0.0)))
            except (ValueError, AttributeError):
                pass
    else:
        log_path.write_text("", encoding="utf-8")
    log_cb = _callback_class()(log_path, previous_elapsed, echo)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss_module,
                                         evaluator=evaluator, callbacks=[log_cb])
    if not progress:  # without a progress bar transformers prints every log dict to stdout: keep stdout clean
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    start_metrics = None
    if evaluator is not None and eval_at_start and not resume:
        say(f"dev set: {dev_info['queries']} queries, {dev_info['docs']} documents ({dev_info['name']})")
        start_metrics = evaluator(model)
        log_cb.write({"step": 0, "epoch": 0.0, "kind": "eval", "ndcg@10": _pick(start_metrics, "_ndcg@10"),
                      "mrr@10": _pick(start_metrics, "_mrr@10"), "recall@10": _pick(start_metrics, "_recall@10"),
                      "elapsed": log_cb.elapsed()})
        say(f"step 0: dev nDCG@10 {_pick(start_metrics, '_ndcg@10'):.4f}  MRR@10 {_pick(start_metrics, '_mrr@10'):.4f}")
    say(f"training {resolved.name} on {len(dataset)} rows ({k} negatives each), {total_steps} steps of {batch_size}")
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last if resume else None)
    train_seconds = time.perf_counter() - t0
    state = trainer.state
    end_metrics = None
    evaluated = {r["step"] for r in log_cb.rows if r.get("kind") == "eval"}
    if base_state is not None:
        merge_weights(model, base_state, merge_base)
        say(f"merged with the base: {merge_base:g} x trained + {1 - merge_base:g} x base")
    if evaluator is not None:
        if state.global_step in evaluated and base_state is None:
            end_metrics = next(r for r in reversed(log_cb.rows) if r.get("kind") == "eval")
        else:
            metrics = evaluator(model)
            end_metrics = {"ndcg@10": _pick(metrics, "_ndcg@10"), "mrr@10": _pick(metrics, "_mrr@10"),
                           "recall@10": _pick(metrics, "_recall@10")}
            log_cb.write({"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), "kind": "eval",
                          **end_metrics, "elapsed": log_cb.elapsed(),
                          **({"merged_with_base": merge_base} if base_state is not None else {})})
    _save_float16(model, out)

    # -- report ----------------------------------------------------------------------------------
    train_losses = [r["loss"] for r in log_cb.rows if r.get("kind") == "train"]
    config = TrainConfig(
        base=resolved.name, recipe=recipe_obj.hub_id if recipe_obj else None, loss=loss, batch_size=batch_size,
        mini_batch_size=mini_batch_size, lr=lr, warmup_ratio=warmup_ratio, weight_decay=weight_decay, epochs=epochs,
        max_steps=max_steps, max_seq_length=max_seq_length,
        matryoshka_dims=sorted({int(d) for d in matryoshka_dims}, reverse=True) if matryoshka_dims else None,
        scale=scale, hard_negatives=hard_negatives, negatives_from=negatives_from, margin=margin, grades=grades,
        order_weight=order_weight, grade_margin=grade_margin, freeze_layers=freeze_layers,
        mix_general=general_paths or None, mix_fraction=mix_fraction, eval_every=eval_every, save_every=save_steps,
        save_total_limit=save_total_limit, log_every=log_every, dev_dataset=str(dev_path) if dev_path else None,
        dev_max_docs=dev_max_docs, dev_max_queries=dev_max_queries, eval_at_start=eval_at_start, seed=seed,
        resume=resume, pairs=paths, kinds=sorted({k.strip() for k in kinds}) if kinds else None,
        max_pairs=max_pairs, merge_base=merge_base, teachers=teachers or None, distill_weight=distill_weight,
    )
    counts = {
        "pairs": len(pairs), "general_pairs": n_general, "train_rows": len(dataset), "negatives_per_row": k,
        "by_task": dict(Counter(p.get("task") for p in rows)),
        "by_language": dict(Counter(p.get("language") or "unknown" for p in rows if p.get("source") != "general")),
        "by_kind": dict(Counter(p.get("kind") or "unknown" for p in rows if p.get("source") != "general")),
    }
    done_steps = state.global_step - (int(Path(last).name.split("-")[-1]) if resume and last else 0)
    report = {
        "out": str(out),
        "config": asdict(config),
        "base_location": resolved.location,
        "query_prefixes": {t: _prefixes(recipe_obj)(t, QUERY) for t in counts["by_task"]},
        "document_prefixes": {t: _prefixes(recipe_obj)(t, DOCUMENT) for t in counts["by_task"]},
        "counts": counts,
        "negatives": mined_note,
        "parameters": frozen,
        "global_step": state.global_step,
        "epoch": state.epoch,
        "resumed_from": str(last) if resume and last else None,
        "train_seconds": round(train_seconds, 2),
        "seconds_per_step": round(train_seconds / max(1, done_steps), 4),
        "train_loss": float(result.training_loss) if result.training_loss is not None else None,
        "first_loss": train_losses[0] if train_losses else None,
        "last_loss": train_losses[-1] if train_losses else None,
        "dev": dict(dev_info or {}, start=None if start_metrics is None else {
            "ndcg@10": _pick(start_metrics, "_ndcg@10"), "mrr@10": _pick(start_metrics, "_mrr@10")},
            end=None if end_metrics is None else {"ndcg@10": end_metrics.get("ndcg@10"),
                                                  "mrr@10": end_metrics.get("mrr@10")}) if dev_info else None,
        "weights_dtype": "float16",
        "device": str(model.device),
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (out / CONFIG_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def merge_weights(model, base_state: dict, alpha: float) -> None:
    """In place: every floating-point tensor becomes ``alpha * trained + (1 - alpha) * base``."""
    import torch

    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name in base_state and tensor.is_floating_point():
                tensor.mul_(alpha).add_(base_state[name].to(tensor.device, tensor.dtype), alpha=1 - alpha)


def _grade(rows: list[dict], grades: str, model, recipe) -> None:
    """Fill ``negative_grades`` (similarity of each negative to the positive, in [0, 1]) where missing."""
    todo = [p for p in rows if p.get("negatives") and (not p.get("negative_grades")
                                                       or any(g is None for g in p["negative_grades"]))]
    if grades == "teacher" and todo:
        prefix = _prefixes(recipe)
        sims = teacher_similarity(model, [prefix(p["task"], DOCUMENT) + p["positive"] for p in todo],
                                  [[prefix(p["task"], DOCUMENT) + n for n in p["negatives"]] for p in todo])
    else:
        sims = [[edit_similarity(p["positive"], n) for n in p["negatives"]] for p in todo]
    for p, row in zip(todo, sims):
        old = p.get("negative_grades") or [None] * len(row)
        p["negative_grades"] = [round(float(g if g is not None else s), 4) for g, s in zip(old, row)]


def remove_checkpoints(out_dir: str | Path) -> None:
    """Delete ``out_dir/checkpoints`` (after a run you will not resume)."""
    shutil.rmtree(Path(out_dir) / CHECKPOINTS, ignore_errors=True)
