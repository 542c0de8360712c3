"""Fine-tune a code embedder on (query, code) pairs: sentence-transformers' trainer with codeseer's recipe.

The recipe (see ``codeseer train --help``):

* pairs from ``codeseer data mine`` (JSON lines ``{"query", "positive", "task", "kind", "language"}``,
  optionally ``"negatives"``), each text given the base model's prefix for its task and role;
* InfoNCE with in-batch negatives at temperature 0.05 (scale 20), GradCache for large batches on a
  CPU, batches without duplicates (a duplicate would be a false in-batch negative);
* optionally BM25 / dense hard negatives with a false-negative margin, the OASIS order term over
  graded negatives, Matryoshka dimensions, frozen lower layers, general pairs mixed in;
* a dev nDCG@10 / MRR@10 every ``eval_every`` steps on the BEIR dev set the config names (the CLI's
  ``--dev`` or ``$CODESEER_DEV_DATASET``; neither: no dev metric), checkpoints with a rotation limit,
  ``resume`` from the last one;
* the result: a sentence-transformers folder with float16 safetensors (loaded back as float32),
  ``training_config.json`` and ``train_log.jsonl``, usable as ``codeseer index --model OUT``.

:func:`train` takes a :class:`~codeseer.train.config.TrainConfig` and runs the stages of a run in order,
each a function of its own: validate the config → select the pairs → prepare the output folder → load
the base (:mod:`.model`) → build the rows with their negatives and the dataset (:mod:`.data`) → the loss,
the dev evaluator (:mod:`.dev`), the arguments and the trainer → evaluate, train, merge, evaluate →
save → report (:mod:`.report`). This module holds the loop; the others hold what it is made of.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Callable
from pathlib import Path

from codeseer.errors import CodeseerError
from codeseer.train.config import NO_DEV, TrainConfig
from codeseer.train.data import PAIRS_FILE, build_rows, load_pairs, prepare_rows, select_pairs, to_dataset
from codeseer.train.dev import build_dev_evaluator, pick
from codeseer.train.losses import build_loss
from codeseer.train.model import Base, freeze_lower_layers, load_base, merge_weights, save_float16
from codeseer.train.report import CONFIG_FILE, LOG_FILE, Fit, build_report, open_log, write_report

CHECKPOINTS = "checkpoints"

__all__ = ["CHECKPOINTS", "CONFIG_FILE", "LOG_FILE", "PAIRS_FILE", "TrainConfig", "build_dev_evaluator",
           "freeze_lower_layers", "load_pairs", "merge_weights", "prepare_rows", "train"]


def train(config: TrainConfig, echo: Callable[[str], None] | None = None) -> dict:
    """Train ``config.base`` on ``config.pairs`` and write the model to ``config.out``; returns the
    training report (also written to ``out/training_config.json``). ``echo`` receives progress lines."""
    say = echo or (lambda msg: None)
    _check_training_extras()
    cfg = config.validate()
    pairs, general = select_pairs(cfg)
    last = _prepare_out(cfg)
    rng = random.Random(cfg.seed)
    base = load_base(cfg)
    data = build_rows(cfg, pairs, general, base.model, base.recipe, rng, say)
    batch_sampler = _batch_sampler(cfg, data.rows)  # before the teachers encode: a bad --batches fails at once
    dataset, teacher_vectors = to_dataset(cfg, data, base.recipe, base.resolved.location, say)
    loss = build_loss(base.model, cfg.loss, mini_batch_size=cfg.mini_batch_size, matryoshka_dims=cfg.matryoshka_dims,
                      scale=cfg.scale, order_weight=cfg.order_weight, grade_margin=cfg.grade_margin,
                      teacher_vectors=teacher_vectors, distill_weight=cfg.distill_weight)
    dev_path, evaluator, dev_info = _dev_evaluator(cfg, base.recipe, say)
    args, save_steps, total_steps = _training_args(cfg, len(dataset), evaluator is not None, batch_sampler)
    trainer, log = _make_trainer(cfg, base.model, args, dataset, loss, evaluator, echo)
    start_metrics = _evaluate_start(cfg, base.model, evaluator, dev_info, log, say)
    say(f"training {base.resolved.name} on {len(dataset)} rows ({data.negatives} negatives each), "
        f"{total_steps} steps of {cfg.batch_size}{' under bf16 autocast' if args.bf16 else ''}")
    fit = _fit(cfg, base, trainer, log, evaluator, last, start_metrics, say)
    save_float16(base.model, cfg.out)
    report = build_report(cfg, base, data, fit, train_rows=len(dataset), dev_path=dev_path, dev_info=dev_info,
                          save_steps=save_steps, last=last)
    report["bf16"] = bool(args.bf16)  # what --precision resolved to on this hardware
    write_report(report, cfg.out)
    return report


def _check_training_extras() -> None:
    """sentence-transformers' trainer needs ``datasets`` and ``accelerate`` (its ``[train]`` extra)."""
    import importlib.util

    missing = [m for m in ("datasets", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise CodeseerError(f"codeseer train needs {' and '.join(missing)}: pip install 'sentence-transformers[train]'")


def _prepare_out(cfg: TrainConfig) -> str | None:
    """Create ``out``; refuse a fresh run over an earlier run's checkpoints, or ``--resume`` without one.
    Returns the checkpoint to resume from (None for a fresh run)."""
    from transformers.trainer_utils import get_last_checkpoint

    ckpt_dir = cfg.out / CHECKPOINTS
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    if cfg.resume and last is None:
        raise CodeseerError(f"--resume: no checkpoint to resume in {ckpt_dir}")
    if not cfg.resume and last is not None:
        raise CodeseerError(f"{cfg.out} already holds checkpoints of a run: pass --resume to continue it, "
                            "or choose another --out")
    cfg.out.mkdir(parents=True, exist_ok=True)
    return last


def _dev_evaluator(cfg: TrainConfig, recipe, say: Callable[[str], None]):
    """``(dev_path, evaluator, info)`` for the config's dev set; all None without one or with ``--eval-every 0``."""
    if not cfg.eval_every or cfg.eval_every < 0:
        return None, None, None
    if not cfg.dev_dataset:
        say(NO_DEV)
        return None, None, None
    dev_path = Path(cfg.dev_dataset)
    evaluator, info = build_dev_evaluator(dev_path, recipe, max_docs=cfg.dev_max_docs,
                                          max_queries=cfg.dev_max_queries)
    return dev_path, evaluator, info


def _training_args(cfg: TrainConfig, rows: int, with_dev: bool, batch_sampler=None):
    """sentence-transformers' training arguments; also the checkpoint interval and the number of steps.
    ``batch_sampler``: :func:`_batch_sampler`'s (None: sentence-transformers' no-duplicates one)."""
    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from transformers import __version__ as hf_version

    steps_per_epoch = max(1, rows // cfg.batch_size)
    total_steps = cfg.max_steps or max(1, math.ceil(steps_per_epoch * cfg.epochs))
    save_steps = cfg.save_every or (cfg.eval_every if with_dev else 500)  # the last step is always saved
    warmup = ({"warmup_steps": float(cfg.warmup_ratio)} if int(hf_version.split(".")[0]) >= 5
              else {"warmup_ratio": cfg.warmup_ratio})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(cfg.out / CHECKPOINTS),
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps else -1,
        batch_sampler=batch_sampler or BatchSamplers.NO_DUPLICATES,
        eval_strategy="steps" if with_dev else "no",
        eval_steps=cfg.eval_every if with_dev else None,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=max(1, cfg.log_every),
        logging_first_step=True,
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to="none",
        disable_tqdm=not cfg.progress,
        dataloader_drop_last=False,
        dataloader_pin_memory=torch.cuda.is_available(),
        bf16=uses_bf16(cfg.precision, cfg.device),
        use_cpu=not _on_cuda(cfg.device),  # transformers wants this said for bf16 autocast on a CPU
        **warmup,
    )
    return args, save_steps, total_steps


def _batch_sampler(cfg: TrainConfig, rows: list[dict]):
    """The repository-grouped sampler for ``--batches repository`` (each row's ``repo``, from
    :func:`codeseer.train.data.build_rows`); None: sentence-transformers' no-duplicates one."""
    if cfg.batches != "repository":
        return None
    groups = [row.get("repo") for row in rows]
    if not any(groups):
        raise CodeseerError("--batches repository: no pair names its repository (mine-git pairs do: "
                            "`codeseer data mine-git`, or a \"repo\" field)")
    from codeseer.train.batching import RepositoryBatchSampler

    return functools.partial(RepositoryBatchSampler, groups=groups)


def uses_bf16(precision: str, device: str | None) -> bool:
    """Whether the run trains under bf16 autocast: ``auto`` where the hardware multiplies bf16 natively
    (a CUDA GPU that supports it, or a CPU with AVX-512 BF16 / AMX, where bf16 matmuls run several times
    faster than fp32), never elsewhere (emulated bf16 is slower than fp32)."""
    import torch

    from codeseer.models.embedder import native_bf16

    if precision != "auto":
        return precision == "bf16"
    return torch.cuda.is_bf16_supported() if _on_cuda(device) else native_bf16()


def _on_cuda(device: str | None) -> bool:
    import torch

    return torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))


def _make_trainer(cfg: TrainConfig, model, args, dataset, loss, evaluator, echo: Callable[[str], None] | None):
    """The trainer, with the callback that writes ``train_log.jsonl`` (returned too)."""
    from sentence_transformers import SentenceTransformerTrainer

    log = open_log(cfg, echo)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss,
                                         evaluator=evaluator, callbacks=[log])
    if not cfg.progress:  # without a progress bar transformers prints every log dict to stdout: keep stdout clean
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer, log


def _evaluate_start(cfg: TrainConfig, model, evaluator, dev_info: dict | None, log,
                    say: Callable[[str], None]) -> dict | None:
    """Score the base model on the dev set (step 0 of the log) before a fresh run trains."""
    if evaluator is None or not cfg.eval_at_start or cfg.resume:
        return None
    say(f"dev set: {dev_info['queries']} queries, {dev_info['docs']} documents ({dev_info['name']})")
    metrics = evaluator(model)
    log.write({"step": 0, "epoch": 0.0, "kind": "eval", "ndcg@10": pick(metrics, "_ndcg@10"),
               "mrr@10": pick(metrics, "_mrr@10"), "recall@10": pick(metrics, "_recall@10"),
               "elapsed": log.elapsed()})
    say(f"step 0: dev nDCG@10 {pick(metrics, '_ndcg@10'):.4f}  MRR@10 {pick(metrics, '_mrr@10'):.4f}")
    return metrics


def _fit(cfg: TrainConfig, base: Base, trainer, log, evaluator, last: str | None, start_metrics: dict | None,
         say: Callable[[str], None]) -> Fit:
    """Train (from ``last`` with ``--resume``), merge with the base for ``--merge-base``, score the end."""
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last if cfg.resume else None)
    seconds = time.perf_counter() - t0
    state = trainer.state
    evaluated = {r["step"] for r in log.rows if r.get("kind") == "eval"}
    if base.state is not None:
        merge_weights(base.model, base.state, cfg.merge_base)
        say(f"merged with the base: {cfg.merge_base:g} x trained + {1 - cfg.merge_base:g} x base")
    end_metrics = None
    if evaluator is not None:
        if state.global_step in evaluated and base.state is None:
            end_metrics = next(r for r in reversed(log.rows) if r.get("kind") == "eval")
        else:
            metrics = evaluator(base.model)
            end_metrics = {"ndcg@10": pick(metrics, "_ndcg@10"), "mrr@10": pick(metrics, "_mrr@10"),
                           "recall@10": pick(metrics, "_recall@10")}
            log.write({"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), "kind": "eval",
                       **end_metrics, "elapsed": log.elapsed(),
                       **({"merged_with_base": cfg.merge_base} if base.state is not None else {})})
    return Fit(state, result.training_loss, seconds, log.rows, start_metrics, end_metrics)

