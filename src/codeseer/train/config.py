"""Every knob of ``codeseer train`` in one place: :class:`TrainConfig`, its defaults and its checks.

The CLI builds a :class:`TrainConfig` from its options, :func:`codeseer.train.trainer.train` takes one,
and the run writes the knobs it used into ``training_config.json``; so each knob, its default and its
check live here and nowhere else. Importing this module is cheap (no torch): the CLI reads the defaults.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from codeseer.errors import CodeseerError

DEV_ENV = "CODESEER_DEV_DATASET"  # the CLI's --dev when the option is not given
NO_DEV = f"no dev metric: no dev set given (--dev or ${DEV_ENV})"
GRADES = ("edit", "teacher")
RUN_ONLY = {"run_only": True}  # field metadata: where/how a run happens, not written to the report's "config"

__all__ = ["DEV_ENV", "GRADES", "NO_DEV", "TrainConfig"]

PRECISIONS = ("auto", "bf16", "fp32")
BATCHES = ("mixed", "repository")  # how rows are grouped into batches (codeseer.train.batching)

@dataclass
class TrainConfig:
    """Every knob of a run. The report's ``config`` (in ``training_config.json``) is this as it was
    used: see :meth:`recorded`; the ``RUN_ONLY`` fields at the end are not part of it.

    ``dev_dataset``: a BEIR folder scored every ``eval_every`` steps; None: no dev metric.
    ``kinds``: train only on pairs of these kinds (``search``, ``name``, ... from ``codeseer data mine``);
    ``max_pairs``: then a seeded random sample of that many (hard-negative mining time grows with it).
    ``merge_base``: WiSE-FT weight-space ensemble at the end, ``merge_base * trained + (1 - merge_base) * base``
    (1.0: the trained weights as they are): fine-tuning on narrow data forgets, and the average keeps
    most of the gain on the new data with the base's robustness elsewhere (Wortsman et al., 2022).
    ``teachers`` (with ``loss="distill"``): models whose in-batch scores the student learns, as an
    equal-weight ensemble; ``"base"`` names the base model itself (the usual guard against forgetting).
    ``batches``: ``mixed`` (any rows together) or ``repository`` (each batch from one repository, so the
    in-batch negatives are that repository's other functions: :mod:`codeseer.train.batching`).
    ``resume``: continue from the newest checkpoint in ``out/checkpoints`` (the mined pairs are
    read back from ``out/train_pairs.jsonl`` so the data order is the same).
    """

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
    margin: float = 0.95  # negatives.DEFAULT_MARGIN (not imported: that module loads lancedb)
    grades: str = "edit"
    order_weight: float = 1.0  # losses.DEFAULT_ORDER_WEIGHT (not imported: that module loads torch)
    grade_margin: float = 0.05  # losses.DEFAULT_GRADE_MARGIN
    freeze_layers: int = 0
    batches: str = "mixed"
    mix_general: list[str] | None = None
    mix_fraction: float = 0.2
    eval_every: int = 200
    save_every: int | None = None
    save_total_limit: int = 2
    log_every: int = 10
    dev_dataset: str | Path | None = None
    dev_max_docs: int | None = 2000
    dev_max_queries: int | None = None
    eval_at_start: bool = True
    seed: int = 0
    precision: str = "auto"  # auto: bf16 autocast where the hardware has native bf16 (CUDA, or a CPU with AVX-512 BF16 / AMX), else fp32
    resume: bool = False
    pairs: list[str] = field(default_factory=list)
    kinds: list[str] | None = None
    max_pairs: int | None = None
    merge_base: float = 1.0
    teachers: list[str] | None = None
    distill_weight: float = 1.0
    out: str | Path | None = field(default=None, metadata=RUN_ONLY)  # the output folder (the report's "out")
    device: str | None = field(default=None, metadata=RUN_ONLY)
    progress: bool = field(default=True, metadata=RUN_ONLY)  # transformers' progress bar

    def validate(self) -> TrainConfig:
        """Check every knob that can be checked before reading any data (one CodeseerError naming the
        option); returns a normalised copy: ``loss`` lower-cased, ``pairs`` / ``mix_general`` as lists of
        strings, ``teachers`` stripped, ``out`` a Path."""
        from codeseer.train.losses import LOSSES  # torch: only once a run starts
        from codeseer.train.negatives import SOURCES

        loss = (self.loss or "").strip().lower()
        if loss not in LOSSES:
            raise CodeseerError(f"unknown loss {loss!r}: choose {' or '.join(LOSSES)}")
        if self.negatives_from not in SOURCES:
            raise CodeseerError(f"unknown --negatives-from {self.negatives_from!r}: choose bm25 or model")
        if self.grades not in GRADES:
            raise CodeseerError(f"unknown --grades {self.grades!r}: choose edit or teacher")
        for name, value in (("--batch-size", self.batch_size), ("--max-seq-length", self.max_seq_length)):
            if value < 1:
                raise CodeseerError(f"{name} must be at least 1")
        if self.mini_batch_size is not None and self.mini_batch_size < 1:
            raise CodeseerError("--mini-batch-size must be at least 1")
        if self.hard_negatives < 0 or self.freeze_layers < 0:
            raise CodeseerError("--hard-negatives and --freeze-layers must be >= 0")
        if self.max_steps is not None and self.max_steps < 1:
            raise CodeseerError("--max-steps must be at least 1")
        if not 0 < self.merge_base <= 1:
            raise CodeseerError("--merge-base must be in (0, 1]")
        if not 0 <= self.mix_fraction < 1:
            raise CodeseerError("--mix-fraction must be in [0, 1)")
        teachers = [t.strip() for t in self.teachers or [] if t.strip()]
        if loss == "distill" and not teachers:
            raise CodeseerError("--loss distill needs at least one --teacher MODEL (or 'base')")
        if teachers and loss != "distill":
            raise CodeseerError("--teacher is used by --loss distill only")
        if self.distill_weight < 0:
            raise CodeseerError("--distill-weight must be >= 0")
        if self.batches not in BATCHES:
            raise CodeseerError(f"unknown --batches {self.batches!r}: choose {' or '.join(BATCHES)}")
        if self.precision not in PRECISIONS:
            raise CodeseerError(f"unknown --precision {self.precision!r}: choose {', '.join(PRECISIONS)}")
        if self.max_pairs is not None and self.max_pairs < 1:
            raise CodeseerError("--max-pairs must be at least 1")
        if self.out is None:
            raise CodeseerError("no output folder given (--out)")
        return replace(self, loss=loss, pairs=_strings(self.pairs), mix_general=_strings(self.mix_general) or None,
                       teachers=teachers or None, out=Path(self.out))

    def recorded(self) -> dict[str, Any]:
        """The knobs as a dict for the report (every field but the ``RUN_ONLY`` ones, in field order)."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if not f.metadata.get("run_only")}


def _strings(paths: str | Path | Sequence[str | Path] | None) -> list[str]:
    """One path or several, as a list of strings (``None``: none)."""
    if paths is None:
        return []
    return [str(paths)] if isinstance(paths, (str, Path)) else [str(p) for p in paths]
