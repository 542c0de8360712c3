"""What a ``codeseer train`` run writes about itself: ``train_log.jsonl`` as it trains, and the report
(``training_config.json``, also returned by ``train``) at the end.

Apart from the loop so that the files a run leaves behind, which later runs and READMEs are compared
with, are defined in one place.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from codeseer.models.tasks import DOCUMENT, QUERY
from codeseer.train.config import TrainConfig
from codeseer.train.data import Rows, prefixes
from codeseer.train.dev import pick
from codeseer.train.model import Base

LOG_FILE = "train_log.jsonl"
CONFIG_FILE = "training_config.json"

__all__ = ["CONFIG_FILE", "LOG_FILE", "Fit", "build_report", "open_log", "write_report"]


@dataclass
class Fit:
    """What training produced, for the report."""

    state: Any  # transformers' TrainerState: global_step, epoch
    training_loss: float | None
    seconds: float
    log_rows: list[dict]  # the rows written to train_log.jsonl by this start of the run
    start_metrics: dict | None  # the evaluator's metrics before training (None: not evaluated)
    end_metrics: dict | None  # {"ndcg@10", "mrr@10", ...} after training (None: no dev set)


def open_log(cfg: TrainConfig, echo: Callable[[str], None] | None):
    """The callback writing ``train_log.jsonl``: a fresh file, or for ``--resume`` appended to, with
    ``elapsed`` going on from the runs it resumes."""
    log_path = Path(cfg.out) / LOG_FILE
    previous_elapsed = 0.0
    if cfg.resume and log_path.is_file():
        for line in log_path.read_text(encoding="utf-8").splitlines():
            try:
                previous_elapsed = max(previous_elapsed, float(json.loads(line).get("elapsed", 0.0)))
            except (ValueError, AttributeError):
                pass
    else:
        log_path.write_text("", encoding="utf-8")
    return _callback_class()(log_path, previous_elapsed, echo)


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
                row.update(kind="eval", **{"ndcg@10": pick(logs, "_ndcg@10"), "mrr@10": pick(logs, "_mrr@10"),
                                           "recall@10": pick(logs, "_recall@10")})
                if self.echo:
                    self.echo(f"step {state.global_step}: dev nDCG@10 {row['ndcg@10']:.4f}  MRR@10 {row['mrr@10']:.4f}")
            else:
                return
            row["elapsed"] = self.elapsed()
            self.write(row)

    return JsonlLog


def build_report(cfg: TrainConfig, base: Base, data: Rows, fit: Fit, *, train_rows: int, dev_path: Path | None,
                 dev_info: dict | None, save_steps: int, last: str | None) -> dict:
    """The training report: the knobs as used, counts, prefixes, losses, dev metrics, timings, versions."""
    used = replace(
        cfg, base=base.resolved.name, recipe=base.recipe.hub_id if base.recipe else None,
        matryoshka_dims=sorted({int(d) for d in cfg.matryoshka_dims}, reverse=True) if cfg.matryoshka_dims else None,
        save_every=save_steps, dev_dataset=str(dev_path) if dev_path else None,
        kinds=sorted({k.strip() for k in cfg.kinds}) if cfg.kinds else None,
    )
    rows = data.rows
    counts = {
        "pairs": data.pairs, "general_pairs": data.general, "train_rows": train_rows, "negatives_per_row": data.negatives,
        "by_task": dict(Counter(p.get("task") for p in rows)),
        "by_language": dict(Counter(p.get("language") or "unknown" for p in rows if p.get("source") != "general")),
        "by_kind": dict(Counter(p.get("kind") or "unknown" for p in rows if p.get("source") != "general")),
    }
    resumed = cfg.resume and last
    done_steps = fit.state.global_step - (int(Path(last).name.split("-")[-1]) if resumed else 0)
    train_losses = [r["loss"] for r in fit.log_rows if r.get("kind") == "train"]
    prefix = prefixes(base.recipe)
    return {
        "out": str(cfg.out),
        "config": used.recorded(),
        "base_location": base.resolved.location,
        "query_prefixes": {t: prefix(t, QUERY) for t in counts["by_task"]},
        "document_prefixes": {t: prefix(t, DOCUMENT) for t in counts["by_task"]},
        "counts": counts,
        "negatives": data.note,
        "parameters": base.frozen,
        "global_step": fit.state.global_step,
        "epoch": fit.state.epoch,
        "resumed_from": str(last) if resumed else None,
        "train_seconds": round(fit.seconds, 2),
        "seconds_per_step": round(fit.seconds / max(1, done_steps), 4),
        "train_loss": float(fit.training_loss) if fit.training_loss is not None else None,
        "first_loss": train_losses[0] if train_losses else None,
        "last_loss": train_losses[-1] if train_losses else None,
        "dev": _dev_report(dev_info, fit),
        "weights_dtype": "float16",
        "device": str(base.model.device),
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _dev_report(dev_info: dict | None, fit: Fit) -> dict | None:
    """The dev set and its nDCG@10 / MRR@10 before and after training (None: no dev metric)."""
    if not dev_info:
        return None
    start, end = fit.start_metrics, fit.end_metrics
    return dict(dev_info,
                start=None if start is None else {"ndcg@10": pick(start, "_ndcg@10"), "mrr@10": pick(start, "_mrr@10")},
                end=None if end is None else {"ndcg@10": end.get("ndcg@10"), "mrr@10": end.get("mrr@10")})


def write_report(report: dict, out: Path) -> None:
    (out / CONFIG_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def _versions() -> dict[str, str]:
    import sentence_transformers
    import torch
    import transformers

    import codeseer

    return {"codeseer": getattr(codeseer, "__version__", "0"), "torch": torch.__version__,
            "transformers": transformers.__version__, "sentence_transformers": sentence_transformers.__version__}
