"""``codeseer train``: fine-tune a code embedder on mined pairs. Registered by :mod:`codeseer.cli`.

Importing this module is cheap: torch, transformers and sentence-transformers load inside the command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from codeseer.errors import CodeseerError
from codeseer.render import console
from codeseer.train.config import DEV_ENV, NO_DEV, TrainConfig

err = console(stderr=True)
D = TrainConfig()  # the defaults of the options below: each knob's default lives in TrainConfig only
RENAMED = {"teacher": "teachers", "dev": "dev_dataset"}  # option name -> TrainConfig field; the others match


def _dims(text: Optional[str]) -> Optional[list[int]]:
    if not text:
        return None
    try:
        dims = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise CodeseerError(f"--matryoshka-dims {text!r}: give comma-separated integers, e.g. 384,256,128,64") from None
    if not dims or any(d < 1 for d in dims):
        raise CodeseerError(f"--matryoshka-dims {text!r}: every dimension must be a positive integer")
    return dims


def _config(options: dict[str, Any]) -> TrainConfig:
    """The run's TrainConfig from the command's options (named after its fields, but for RENAMED)."""
    values = {RENAMED.get(name, name): value for name, value in options.items() if name != "as_json"}
    dev = values["dev_dataset"]
    return TrainConfig(**{
        **values,
        "matryoshka_dims": _dims(values["matryoshka_dims"]),
        "kinds": values["kinds"].split(",") if values["kinds"] else None,
        "dev_dataset": None if dev is None or dev.strip().lower() in ("none", "off", "no", "") else dev,
        "progress": not options["as_json"] and err.is_terminal,
    })


def train_command(
    pairs: Annotated[list[Path], typer.Option("--pairs", "-p", help="Training pairs, JSON lines from `codeseer data mine` (repeatable): {\"query\", \"positive\", \"task\", ...}, optionally \"negatives\": [...].")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder: the trained sentence-transformers model, training_config.json, train_log.jsonl, checkpoints/.")],
    base: Annotated[Optional[str], typer.Option("--base", "-m", help="Model to start from: a local sentence-transformers/transformers folder or a registry id (default: all-MiniLM-L6-v2, bundled).")] = D.base,
    recipe: Annotated[Optional[str], typer.Option("--recipe", help="Registry recipe whose per-task prefixes to train with (default: the base's own, if it has one); see `codeseer models`.")] = D.recipe,
    loss: Annotated[str, typer.Option("--loss", help="infonce: in-batch negatives at temperature 0.05; gist: infonce where a frozen copy of the base drops in-batch negatives it scores above the positive (false negatives); oasis: infonce + an order term keeping graded hard negatives in order (needs --hard-negatives); distill: infonce + KL from the --teacher models' in-batch scores.")] = D.loss,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Pairs per step; each query sees the other positives (and negatives) of its batch as negatives, so bigger is better.")] = D.batch_size,
    mini_batch_size: Annotated[Optional[int], typer.Option("--mini-batch-size", min=1, help="GradCache: run the model on this many texts at a time, same loss and gradients as the full batch; use it to reach --batch-size 64-512 on a CPU.")] = D.mini_batch_size,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (linear warm-up, then linear decay).")] = D.lr,
    warmup_ratio: Annotated[float, typer.Option("--warmup-ratio", min=0.0, max=1.0, help="Fraction of the steps spent warming the learning rate up.")] = D.warmup_ratio,
    epochs: Annotated[float, typer.Option("--epochs", min=0.0, help="Passes over the pairs (ignored when --max-steps is given).")] = D.epochs,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", min=1, help="Stop after this many optimiser steps.")] = D.max_steps,
    max_seq_length: Annotated[int, typer.Option("--max-seq-length", min=8, help="Tokens per text; longer code is cut. Time per step grows with it.")] = D.max_seq_length,
    matryoshka_dims: Annotated[Optional[str], typer.Option("--matryoshka-dims", help="Train these prefixes of the vector too (Matryoshka), e.g. 384,256,128,64, so `index --dim 128` keeps quality.")] = None,
    hard_negatives: Annotated[int, typer.Option("--hard-negatives", "-n", min=0, help="Mine N hard negatives per pair (texts that look right but are not the answer).")] = D.hard_negatives,
    negatives_from: Annotated[str, typer.Option("--negatives-from", help="Mine with bm25 (lexical, fast) or model (the base model's own ranking, dense).")] = D.negatives_from,
    margin: Annotated[float, typer.Option("--margin", min=0.01, max=1.0, help="False-negative guard: drop candidates scoring >= MARGIN x the positive's score (and exact duplicates of it).")] = D.margin,
    grades: Annotated[str, typer.Option("--grades", help="With --loss oasis: grade each negative by edit (token edit similarity to the positive) or teacher (the base model's cosine to it).")] = D.grades,
    order_weight: Annotated[float, typer.Option("--order-weight", min=0.0, help="With --loss oasis: weight of the order term (loss = infonce + W * order).")] = D.order_weight,
    freeze_layers: Annotated[int, typer.Option("--freeze-layers", min=0, help="Freeze the token embeddings and the first N transformer layers: faster steps, less forgetting.")] = D.freeze_layers,
    batches: Annotated[str, typer.Option("--batches", help="mixed: any pairs share a batch; repository: each batch from one repository (mine-git pairs), so the in-batch negatives are that repository's other functions, the confusion localisation suffers; other pairs get batches of their own.")] = D.batches,
    mix_general: Annotated[Optional[list[Path]], typer.Option("--mix-general", help="General-domain pairs (same JSON lines) mixed in against forgetting (repeatable).")] = D.mix_general,
    mix_fraction: Annotated[float, typer.Option("--mix-fraction", min=0.0, max=0.9, help="Share of the training rows taken from --mix-general.")] = D.mix_fraction,
    kinds: Annotated[Optional[str], typer.Option("--kinds", help="Train only on these pair kinds, comma-separated: search, name, docstring, first_sentence, code2nl (see `codeseer data mine`).")] = None,
    merge_base: Annotated[float, typer.Option("--merge-base", min=0.01, max=1.0, help="WiSE-FT: keep this share of the trained weights and average in the base's (1.0: no merging); guards against forgetting.")] = D.merge_base,
    teacher: Annotated[Optional[list[str]], typer.Option("--teacher", help="With --loss distill: a teacher model (local folder, registry id, or 'base' for the base itself); repeat for an equal-weight ensemble. Each training text is encoded once by each teacher before training.")] = D.teachers,
    distill_weight: Annotated[float, typer.Option("--distill-weight", min=0.0, help="With --loss distill: weight of the KL term (loss = infonce + W * KL).")] = D.distill_weight,
    max_pairs: Annotated[Optional[int], typer.Option("--max-pairs", min=1, help="Then a seeded random sample of N pairs (hard-negative mining time grows with N).")] = D.max_pairs,
    eval_every: Annotated[int, typer.Option("--eval-every", min=0, help="Dev nDCG@10 / MRR@10 every N steps (0: no dev evaluation); checkpoints are saved as often.")] = D.eval_every,
    save_every: Annotated[Optional[int], typer.Option("--save-every", min=1, help="Checkpoint every N steps (default: --eval-every); the last 2 are kept.")] = D.save_every,
    dev: Annotated[Optional[str], typer.Option("--dev", envvar=DEV_ENV, help="BEIR folder scored for the dev nDCG@10 / MRR@10 every --eval-every steps (default: $CODESEER_DEV_DATASET); with neither, no dev metric. 'none' skips it.")] = D.dev_dataset,
    dev_max_docs: Annotated[Optional[int], typer.Option("--dev-max-docs", min=1, help="Subsample the dev corpus to N documents (relevant ones always kept) so evaluation stays quick.")] = D.dev_max_docs,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its newest checkpoint (optimiser, schedule, data order and step count included).")] = D.resume,
    seed: Annotated[int, typer.Option("--seed", help="Seed for shuffling, sampling and initialisation.")] = D.seed,
    precision: Annotated[str, typer.Option("--precision", help="auto (bf16 autocast where the hardware has native bf16: a CUDA GPU, or a CPU with AVX-512 BF16 / AMX, several times faster there), bf16 or fp32.")] = D.precision,
    log_every: Annotated[int, typer.Option("--log-every", min=1, help="Log the training loss every N steps.")] = D.log_every,
    as_json: Annotated[bool, typer.Option("--json", help="Print the training report as JSON (no progress bar).")] = False,
) -> None:
    """Fine-tune a code embedding model on (query, code) pairs with codeseer's recipe.

    The recipe: InfoNCE with in-batch negatives at temperature 0.05, batches without duplicates,
    the base model's prefixes per task, optional mined hard negatives with a false-negative margin,
    optional OASIS order term and Matryoshka dimensions; dev nDCG@10 as it trains on the BEIR folder
    that --dev or $CODESEER_DEV_DATASET names (with neither, no dev metric). The result in --out is a
    sentence-transformers folder (float16 safetensors) that `codeseer index --model OUT` and
    `codeseer eval --model OUT` take as it is.

    Start small, look at train_log.jsonl, then scale: the first dev row is the base model, so you can
    see whether training helps before spending hours.

    Examples:

      codeseer data mine ~/src --out pairs.jsonl

      codeseer train --pairs pairs.jsonl --out models/mine --max-steps 200 --dev datasets/cosqa-dev   # quick look

      codeseer train -p pairs.jsonl -o models/mine -b 128 --mini-batch-size 16 --hard-negatives 3 \\
          --matryoshka-dims 384,256,128,64 --freeze-layers 2 --epochs 1

      codeseer train -p pairs.jsonl -o models/mine --resume   # after an interruption

      codeseer eval cosqa-dev --model models/mine
    """
    options = dict(locals())  # every option above, by name (see _config)
    from codeseer.extras import need

    for module in ("torch", "sentence_transformers"):
        need(module, "codeseer train")
    from codeseer.train.trainer import train

    echo = None if as_json else (lambda msg: err.print(msg, highlight=False, markup=False, soft_wrap=True))
    report = train(_config(options), echo=echo)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        _print_summary(report)


def _print_summary(report: dict) -> None:
    """The run in two lines on stderr: steps, time, loss, dev nDCG@10 (or why there is none), the model."""
    dev_end = (report.get("dev") or {}).get("end") or {}
    dev_start = (report.get("dev") or {}).get("start") or {}
    losses = " -> ".join(f"{x:.4f}" for x in (report["first_loss"], report["last_loss"]) if x is not None)
    line = (f"[bold green]trained[/] {report['global_step']} steps in {report['train_seconds']:.0f}s "
            f"({report['seconds_per_step']:.2f}s/step), loss {losses or 'n/a'}")
    if dev_end.get("ndcg@10") is not None:
        before = f"{dev_start['ndcg@10']:.4f} -> " if dev_start.get("ndcg@10") is not None else ""
        line += f"; dev nDCG@10 {before}{dev_end['ndcg@10']:.4f}"
    elif not report.get("dev"):
        line += f"; {NO_DEV}" if report["config"]["eval_every"] else "; no dev metric (--eval-every 0)"
    err.print(line, soft_wrap=True)
    err.print(f"[dim]model: {report['out']}  (codeseer index --model {report['out']})[/]", soft_wrap=True)
