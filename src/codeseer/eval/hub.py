"""Named public code-retrieval benchmarks from the Hugging Face hub.

``load_named("coir:cosqa")`` / ``load_named("mteb:HumanEvalRetrieval")`` give
the same ``BeirDataset`` as a local BEIR folder, so published CoIR/MTEB
numbers can be reproduced with codeseer's own evaluator.  ``datasets`` is an
optional dependency, imported only when a hub dataset is actually loaded.

Hub layouts (checked against the loaders that produce the published scores):

* MTEB layout, used by MTEB's ``RetrievalDataLoader`` and by MTEB's CoIR task
  definitions (``CosQA`` -> ``CoIR-Retrieval/cosqa``, ``AppsRetrieval`` ->
  ``CoIR-Retrieval/apps``, ...): one repo with configs ``corpus`` (split
  ``corpus``; ``_id``, ``title``, ``text``), ``queries`` (split ``queries``;
  ``_id``, ``text``) and ``default`` (qrels; split ``test``; ``query-id``,
  ``corpus-id``, ``score``).  Multilingual repos prefix the configs with the
  subset: ``python-corpus``, ``python-queries``, ``python-qrels``
  (``CoIR-Retrieval/CodeSearchNet``, ``CoIR-Retrieval/CodeSearchNet-ccr``).
  The ``embedding-benchmark/*`` repos (MBPP, DS1000) use ``id`` for ``_id``.
* Legacy CoIR layout, used by the ``coir-eval`` package
  (``coir/data_loader.py``): ``CoIR-Retrieval/<task>-queries-corpus`` with
  splits ``corpus`` and ``queries``, plus ``CoIR-Retrieval/<task>-qrels``
  split ``test`` with ``query_id``, ``corpus_id``, ``score``.  Tried only when
  the MTEB-layout repo/config does not exist.

As in CoIR and MTEB the whole corpus is kept; queries are restricted to those
with qrels in the requested split (which also drops the train partition that
CoIR stores alongside test queries).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .beir import TASKS, BeirDataset, from_rows

__all__ = [
    "COIR_LANGS",
    "COIR_TASKS",
    "MTEB_TASKS",
    "HubSource",
    "load_named",
    "resolve_named",
]

log = logging.getLogger(__name__)

COIR_ORG = "CoIR-Retrieval"

#: CoIR task -> (hub repo name under CoIR-Retrieval/, codeseer task).
#: codesearchnet is code -> docstring ("Code Summary Retrieval" in the CoIR
#: paper), hence code2nl; codesearchnet-ccr retrieves a function's continuation
#: from its prefix ("Code Context Retrieval"), hence completion.
COIR_TASKS: dict[str, tuple[str, str]] = {
    "apps": ("apps", "nl2code"),
    "cosqa": ("cosqa", "nl2code"),
    "synthetic-text2sql": ("synthetic-text2sql", "nl2code"),
    "codesearchnet": ("CodeSearchNet", "code2nl"),
    "codesearchnet-ccr": ("CodeSearchNet-ccr", "completion"),
    "codetrans-dl": ("codetrans-dl", "code2code"),
    "codetrans-contest": ("codetrans-contest", "code2code"),
    "stackoverflow-qa": ("stackoverflow-qa", "qa"),
    "codefeedback-st": ("codefeedback-st", "qa"),
    "codefeedback-mt": ("codefeedback-mt", "qa"),
}
#: Tasks split into per-language subsets (spec ``coir:codesearchnet/python``).
COIR_MULTILINGUAL = frozenset({"codesearchnet", "codesearchnet-ccr"})
COIR_LANGS: tuple[str, ...] = ("python", "javascript", "go", "ruby", "java", "php")

#: MTEB task name -> (hub repo, codeseer task).  Repo paths as in MTEB's task
#: metadata; CoIR tasks point at the CoIR-Retrieval originals (newer MTEB
#: releases mirror some under mteb/<name>, same layout).  Unknown names fall
#: back to ``mteb/<TaskName>``; ``mteb:<org>/<repo>`` names a repo directly.
MTEB_TASKS: dict[str, tuple[str, str]] = {
    "HumanEvalRetrieval": ("mteb/HumanEvalRetrieval", "nl2code"),
    "MBPPRetrieval": ("embedding-benchmark/MBPP", "nl2code"),
    "DS1000Retrieval": ("embedding-benchmark/DS1000", "nl2code"),
    "CosQA": ("CoIR-Retrieval/cosqa", "nl2code"),
    "AppsRetrieval": ("CoIR-Retrieval/apps", "nl2code"),
    "SyntheticText2SQL": ("CoIR-Retrieval/synthetic-text2sql", "nl2code"),
    "CodeTransOceanDL": ("CoIR-Retrieval/codetrans-dl", "code2code"),
    "CodeTransOceanContest": ("CoIR-Retrieval/codetrans-contest", "code2code"),
    "StackOverflowQA": ("CoIR-Retrieval/stackoverflow-qa", "qa"),
    "CodeFeedbackST": ("CoIR-Retrieval/codefeedback-st", "qa"),
    "CodeFeedbackMT": ("CoIR-Retrieval/codefeedback-mt", "qa"),
}


@dataclass(frozen=True)
class HubSource:
    """Where and how to fetch one named benchmark (result of ``resolve_named``)."""

    name: str
    repo: str
    task: str
    corpus_config: str = "corpus"
    queries_config: str = "queries"
    qrels_config: str = "default"
    #: ``CoIR-Retrieval/<task>`` base of the legacy ``-queries-corpus``/``-qrels``
    #: pair, tried if the MTEB layout is missing; None for non-CoIR sources.
    legacy_base: str | None = None


def _coir_source(spec: str, body: str) -> HubSource:
    key = body.strip().lower()
    lang: str | None = None
    if "/" in key:
        key, lang = key.split("/", 1)
    elif key not in COIR_TASKS and "-" in key:
        base, _, maybe_lang = key.rpartition("-")
        if base in COIR_MULTILINGUAL and maybe_lang in COIR_LANGS:
            key, lang = base, maybe_lang  # CoIR's own "CodeSearchNet-python" naming
    if key not in COIR_TASKS:
        raise ValueError(
            f"unknown CoIR task {body!r} in {spec!r}; known: {sorted(COIR_TASKS)}"
        )
    repo_name, task = COIR_TASKS[key]
    if key in COIR_MULTILINGUAL:
        if lang not in COIR_LANGS:
            raise ValueError(
                f"{spec!r}: CoIR task {key!r} needs a language, e.g. "
                f"'coir:{key}/python'; languages: {list(COIR_LANGS)}"
            )
        return HubSource(
            name=f"coir:{key}/{lang}",
            repo=f"{COIR_ORG}/{repo_name}",
            task=task,
            corpus_config=f"{lang}-corpus",
            queries_config=f"{lang}-queries",
            qrels_config=f"{lang}-qrels",
            # coir-eval sub-task names: CodeSearchNet-python, CodeSearchNet-ccr-python
            legacy_base=f"{COIR_ORG}/{repo_name}-{lang}",
        )
    if lang is not None:
        raise ValueError(f"{spec!r}: CoIR task {key!r} has no language subsets")
    return HubSource(
        name=f"coir:{key}",
        repo=f"{COIR_ORG}/{repo_name}",
        task=task,
        legacy_base=f"{COIR_ORG}/{repo_name}",
    )


def _mteb_source(spec: str, body: str) -> HubSource:
    body = body.strip()
    if not body:
        raise ValueError(f"{spec!r}: missing MTEB task name")
    if "/" in body:  # explicit hub repo in MTEB layout
        return HubSource(name=f"mteb:{body}", repo=body, task="nl2code")
    for name, (repo, task) in MTEB_TASKS.items():
        if name.lower() == body.lower():
            return HubSource(name=f"mteb:{name}", repo=repo, task=task)
    log.warning("MTEB task %r not in codeseer's table; trying repo mteb/%s", body, body)
    return HubSource(name=f"mteb:{body}", repo=f"mteb/{body}", task="nl2code")


def resolve_named(spec: str) -> HubSource:
    """Parse ``coir:<task>[/<lang>]`` or ``mteb:<TaskName>`` into a ``HubSource``."""
    prefix, sep, body = spec.partition(":")
    prefix = prefix.strip().lower()
    if not sep:
        raise ValueError(
            f"benchmark spec {spec!r} must look like 'coir:<task>' or 'mteb:<TaskName>'"
        )
    if prefix == "coir":
        return _coir_source(spec, body)
    if prefix == "mteb":
        return _mteb_source(spec, body)
    raise ValueError(f"unknown benchmark source {prefix!r} in {spec!r}; use 'coir' or 'mteb'")


def _require_datasets():
    try:
        import datasets  # noqa: PLC0415 - optional dependency
    except ImportError as e:
        raise ImportError(
            "loading hub benchmarks needs the Hugging Face 'datasets' package: "
            "pip install datasets"
        ) from e
    return datasets


def _pick_split(dd: Mapping[str, Iterable], preferred: str, what: str) -> Iterable:
    if preferred in dd:
        return dd[preferred]
    splits = list(dd)
    if not splits:
        raise ValueError(f"{what}: no splits")
    return dd[splits[0]]


def _load_rows(src: HubSource, split: str, cache_dir, revision):
    ds = _require_datasets()
    kw: dict[str, Any] = {}
    if cache_dir is not None:
        kw["cache_dir"] = str(cache_dir)
    if revision is not None:
        kw["revision"] = revision
    try:
        corpus = ds.load_dataset(src.repo, src.corpus_config, **kw)
        queries = ds.load_dataset(src.repo, src.queries_config, **kw)
        qrels = ds.load_dataset(src.repo, src.qrels_config, **kw)
        qrels_where = f"{src.repo} [{src.qrels_config}]"
        corpus_rows = _pick_split(corpus, "corpus", f"{src.repo} [{src.corpus_config}]")
        query_rows = _pick_split(queries, "queries", f"{src.repo} [{src.queries_config}]")
    except (FileNotFoundError, ValueError) as e:
        # Missing repo (DatasetNotFoundError is a FileNotFoundError) or missing
        # config (ValueError): fall back to the coir-eval layout if there is one.
        if src.legacy_base is None:
            raise
        log.info("%s: MTEB layout unavailable (%s); trying %s-queries-corpus",
                 src.repo, e, src.legacy_base)
        both = ds.load_dataset(f"{src.legacy_base}-queries-corpus", **kw)
        qrels = ds.load_dataset(f"{src.legacy_base}-qrels", **kw)
        qrels_where = f"{src.legacy_base}-qrels"
        corpus_rows, query_rows = both["corpus"], both["queries"]
    if split not in qrels:
        raise ValueError(f"{qrels_where}: no split {split!r}; available: {list(qrels)}")
    return corpus_rows, query_rows, qrels[split]


def load_named(
    spec: str,
    cache_dir: str | Path | None = None,
    *,
    split: str = "test",
    revision: str | None = None,
    task: str | None = None,
) -> BeirDataset:
    """Download (via ``datasets``) and convert a named hub benchmark.

    ``spec``: ``coir:cosqa``, ``coir:codesearchnet/python``,
    ``mteb:HumanEvalRetrieval``, ``mteb:<org>/<repo>``.  ``task`` overrides the
    codeseer task from the table.  Requires ``pip install datasets``.
    """
    src = resolve_named(spec)
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    corpus_rows, query_rows, qrels_rows = _load_rows(src, split, cache_dir, revision)
    return from_rows(
        src.name,
        corpus_rows,
        query_rows,
        qrels_rows,
        task=task or src.task,
        meta={"source": src.repo, "split": split, "revision": revision},
    )
