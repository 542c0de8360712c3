"""``codeseer eval`` and ``codeseer eval-repo``: thin Typer commands over the eval modules.

Registered in :mod:`codeseer.cli`. Importing this module must stay cheap (no torch, no lancedb):
everything heavy is imported inside the command bodies. The logic lives in
:mod:`codeseer.eval.runner` (retrieval runs), :mod:`codeseer.eval.report` (records, tables,
comparison, plot) and :mod:`codeseer.eval.repo` (file-level repository evaluation).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from codeseer.errors import CodeseerError

__all__ = ["eval_command", "eval_repo_command"]

out = Console()
err = Console(stderr=True, soft_wrap=True)  # messages stay one line when piped

MODES = ("dense", "lexical", "hybrid")
REPO_MODES = ("hybrid", "dense", "lexical")
_NAMED = re.compile(r"^(coir|mteb):", re.IGNORECASE)


def _print_table(table) -> None:
    """Print a table whole: piped or redirected output is not cut to 80 columns."""
    if out.is_terminal:
        out.print(table)
        return
    from rich.measure import Measurement

    needed = Measurement.get(out, out.options.update(width=10_000), table).maximum
    width = out.width
    out.width = max(width, needed)
    try:
        out.print(table)
    finally:
        out.width = width


def _check_modes(modes: list[str] | None, allowed: tuple[str, ...], default: tuple[str, ...]) -> list[str]:
    chosen = list(dict.fromkeys(m.strip().lower() for m in (modes or default)))
    bad = [m for m in chosen if m not in allowed]
    if bad:
        raise CodeseerError(f"unknown mode {bad[0]!r}; choose from {', '.join(allowed)}")
    return chosen


def _load_dataset(spec: str, *, task: str | None, split: str):
    """A BEIR folder, or a ``coir:``/``mteb:`` hub benchmark; every failure is one CodeseerError line."""
    from codeseer.eval.beir import load_beir

    path = Path(spec).expanduser()
    if _NAMED.match(spec) and not path.exists():
        from codeseer.eval.hub import load_named

        try:
            return load_named(spec, split=split, task=task)
        except ImportError as e:
            raise CodeseerError(f"{spec}: {e}") from None
        except (ValueError, FileNotFoundError) as e:
            raise CodeseerError(f"{spec}: {e}") from None
        except Exception as e:  # network, hub errors: one line, not a traceback
            raise CodeseerError(f"{spec}: could not load from the Hugging Face hub "
                                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not path.exists():
        raise CodeseerError(f"dataset not found: {spec} (expected a BEIR folder, coir:TASK or mteb:TASK)")
    try:
        dataset = load_beir(path, split=split)
    except (ValueError, FileNotFoundError) as e:
        raise CodeseerError(str(e)) from None
    if task is not None:
        dataset.task = task
    return dataset


def eval_command(
    datasets: Annotated[Optional[list[str]], typer.Argument(
        help="BEIR folders (corpus.jsonl, queries.jsonl, qrels/test.tsv, optional meta.json) or hub "
        "benchmarks: coir:cosqa, coir:codesearchnet/python, mteb:HumanEvalRetrieval (need `pip install datasets` "
        "and network).", show_default=False, metavar="DATASET")] = None,
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", "-m", help="Model to evaluate (repeatable): sentence-transformers folder or hub id. "
        "Default: codeseer-code-mini (bundled); `-m minilm` is all-MiniLM-L6-v2; `-m A+B` an ensemble of both.",
        show_default=False)] = None,
    mode: Annotated[Optional[list[str]], typer.Option(
        "--mode", help="dense, lexical (BM25, no model) or hybrid; repeatable. Default: all three.",
        show_default=False)] = None,
    task: Annotated[Optional[str], typer.Option(
        "--task", help="Retrieval task (nl2code, code2code, code2nl, qa, completion); default: the dataset's "
        "meta.json task, else nl2code. Recorded in the results; used for task prompts when the model has them.",
        show_default=False)] = None,
    dim: Annotated[Optional[int], typer.Option(
        "--dim", min=1, help="Matryoshka: keep the first N dimensions of every vector and re-normalise.",
        show_default=False)] = None,
    split: Annotated[str, typer.Option("--split", help="qrels split: qrels/SPLIT.tsv.")] = "test",
    cache_dir: Annotated[Optional[Path], typer.Option(
        "--cache-dir", help="Where document vectors are cached, per model and corpus. "
        "Default: $CODESEER_CACHE or ~/.cache/codeseer.", show_default=False)] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Encode the corpus again; do not read or write "
                                           "the vector cache.")] = False,
    json_path: Annotated[Optional[Path], typer.Option(
        "--json", help="Save the results as a JSON list of records (for --compare).", show_default=False)] = None,
    plot: Annotated[Optional[Path], typer.Option(
        "--plot", help="Save a bar chart of nDCG@10 per dataset and run (needs matplotlib).",
        show_default=False)] = None,
    baseline: Annotated[Optional[str], typer.Option(
        "--baseline", help="Test every run against this one, per dataset: difference, 95% bootstrap CI and "
        "paired randomization p-value for nDCG@10 and MRR@10. MODEL[:MODE] (mode default dense) or bm25; "
        "the model is added to the run if missing. E.g. --baseline minilm:dense.", show_default=False)] = None,
    compare: Annotated[Optional[tuple[Path, Path]], typer.Option(
        "--compare", help="Compare two --json result files: A, B and B − A per dataset, model and mode.",
        show_default=False)] = None,
) -> None:
    """Measure retrieval quality on BEIR-format benchmarks: nDCG@10, MAP@10, Recall@10/100, MRR@10.

    Runs every model in every mode on every dataset and prints one table, with the time spent
    encoding the corpus and the query throughput. Document vectors are cached, so a second run of
    the same model on the same corpus only encodes the queries.

    Examples:

      codeseer eval ../shared/datasets/cosqa-dev
      codeseer eval ../shared/datasets/cosqa-dev --mode lexical
      codeseer eval data/cosqa-dev data/java2cs-dev -m all-MiniLM-L6-v2 -m ./my-model --json new.json
      codeseer eval data/cosqa-dev --mode dense --dim 128 --json dim128.json
      codeseer eval data/cosqa-dev data/java2cs-dev --baseline minilm:dense   # is the default really better?
      codeseer eval coir:cosqa mteb:HumanEvalRetrieval --json hub.json
      codeseer eval --compare old.json new.json
    """
    from codeseer.eval import report

    if compare is not None:
        if datasets:
            raise CodeseerError("--compare takes two result files and no datasets")
        _compare(*compare)
        return
    if not datasets:
        raise CodeseerError("give at least one dataset (a BEIR folder, coir:TASK or mteb:TASK), or --compare A.json B.json")

    from codeseer.eval.beir import TASKS

    modes = _check_modes(mode, MODES, MODES)
    if task is not None and task not in TASKS:
        raise CodeseerError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    if plot is not None and not report.matplotlib_available():
        err.print(f"[bold red]error:[/] {report.PLOT_INSTALL_HINT}", highlight=False)  # said now, not after the run
        plot = None
    if no_cache:
        cache = None
    else:
        from codeseer.eval.runner import default_cache_dir

        cache = cache_dir.expanduser() if cache_dir is not None else default_cache_dir()

    models = list(model or [None])
    is_baseline = None
    if baseline is not None:
        is_baseline, extra_model = _baseline(baseline, models, modes)
        if extra_model is not None:
            models.append(extra_model)
    loaded = [_load_dataset(spec, task=task, split=split) for spec in datasets]  # fail fast, before any model
    from codeseer.eval.runner import evaluate_datasets

    try:
        records = evaluate_datasets(loaded, models=models, modes=modes, dim=dim, cache_dir=cache,
                                    log=lambda msg: err.print(msg, highlight=False, markup=False))
    except ValueError as e:  # --dim larger than a model's vectors
        raise CodeseerError(str(e)) from None

    _print_table(report.results_table(records))
    if is_baseline is not None:
        _print_table(report.baseline_table(records, is_baseline))
    if json_path is not None:
        report.save_records(json_path, records)
        err.print(f"[dim]results: {json_path}[/]")
    if plot is not None:
        report.plot_metric(records, plot)
        err.print(f"[dim]plot: {plot}[/]")


def _baseline(spec: str, models: list[str | None], modes: list[str]):
    """``--baseline`` as a record predicate, plus the model to add to the run when it is not in it."""
    text = spec.strip()
    model, sep, mode = text.rpartition(":")
    if not (sep and mode.strip().lower() in MODES):
        model, mode = text, "dense"
    mode = mode.strip().lower()
    if text.lower() in ("bm25", "lexical") or mode == "lexical":
        if "lexical" not in modes:
            raise CodeseerError("--baseline bm25 needs the lexical mode: add --mode lexical")
        return (lambda rec: rec["mode"] == "lexical"), None
    if not model.strip():
        raise CodeseerError(f"--baseline {spec!r}: give MODEL[:MODE] (e.g. minilm:dense) or bm25")
    if mode not in modes:
        raise CodeseerError(f"--baseline {spec!r} needs the {mode} mode: add --mode {mode}")
    from codeseer.models.embedder import resolve_model

    name = resolve_model(model).name
    evaluated = {resolve_model(m).name for m in models}
    return (lambda rec: rec.get("model") == name and rec["mode"] == mode), (None if name in evaluated else model)


def _compare(a_path: Path, b_path: Path) -> None:
    from codeseer.eval import report

    try:
        a, b = report.load_records(a_path), report.load_records(b_path)
    except (ValueError, FileNotFoundError) as e:
        raise CodeseerError(str(e)) from None
    comparison = report.compare_records(a, b)
    if comparison.rows:
        _print_table(report.comparison_table(comparison, str(a_path), str(b_path)))
    else:
        err.print("no (dataset, model, mode) run is in both files")
    for label, keys in (("only in A", comparison.only_a), ("only in B", comparison.only_b)):
        if keys:
            shown = "; ".join(f"{d} {report.short_model(m)} {mode}" for d, m, mode in keys[:5])
            more = f" (+{len(keys) - 5} more)" if len(keys) > 5 else ""
            err.print(f"[yellow]{label}:[/] {shown}{more}", highlight=False)
    if comparison.duplicates:
        err.print(f"[yellow]warning:[/] {len(comparison.duplicates)} run(s) appear twice in one file; "
                  "the last record was used", highlight=False)


def eval_repo_command(
    repo: Annotated[Path, typer.Argument(help="Repository to search (indexed first, incrementally).",
                                         show_default=False, metavar="REPO_DIR")],
    queries: Annotated[Path, typer.Argument(
        help='JSON lines: {"_id": "1", "text": "bug report or change description", "files": ["src/a.py"]}.',
        show_default=False, metavar="QUERIES.jsonl")],
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="Model for a new index (an existing index keeps its own). Default: codeseer-code-mini.",
        show_default=False)] = None,
    mode: Annotated[Optional[list[str]], typer.Option(
        "--mode", help="hybrid, dense or lexical (chunk BM25); repeatable. Default: all three.",
        show_default=False)] = None,
    index_dir: Annotated[Optional[Path], typer.Option(
        "--index", help="Index folder (default: REPO/.codeseer).", show_default=False)] = None,
    k: Annotated[int, typer.Option("-k", "--top", min=1, max=1000,
                                   help="Chunk hits fetched per query before grouping them by file.")] = 100,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline",
                                           help="Also rank whole files by BM25, for comparison.")] = True,
    json_path: Annotated[Optional[Path], typer.Option(
        "--json", help="Save the results as a JSON list of records (same format as `codeseer eval`).",
        show_default=False)] = None,
) -> None:
    """Which files does a change touch? File-level Recall@1/5/10 and MRR@10 on your own repository.

    Each query is searched like `codeseer search` would; chunk hits become a file ranking (a file
    scores as its best chunk). A baseline that ranks whole files by BM25 (bm25-files) runs alongside.
    Files a query lists but the repository does not have are counted in a warning and left out.

    Examples:

      codeseer eval-repo . changes.jsonl
      codeseer eval-repo ~/src/flask flask-issues.jsonl --mode hybrid --mode dense --json flask.json
      codeseer eval-repo . changes.jsonl --mode lexical -k 200

    changes.jsonl, one query per line:
      {"_id": "12", "text": "retries do not back off", "files": ["src/net/retry.py"]}
    """
    from codeseer.eval import report
    from codeseer.eval.repo import load_repo_queries

    modes = _check_modes(mode, REPO_MODES, REPO_MODES)
    try:
        loaded = load_repo_queries(queries)  # fail fast: before indexing
    except (ValueError, FileNotFoundError) as e:
        raise CodeseerError(str(e)) from None
    from codeseer.eval.repo import evaluate_repo

    def indexed(rep) -> None:
        err.print(f"[dim]index: {rep.index_dir} ({rep.files} files, {rep.chunks} chunks, "
                  f"{rep.embedded_chunks} embedded, {rep.seconds:.1f}s) model: {rep.model}[/]", highlight=False)

    result = evaluate_repo(repo, loaded, modes=modes, model=model, index_dir=index_dir, k=k, baseline=baseline,
                           progress=err.is_terminal, on_indexed=indexed)
    if result.missing:
        example = ", ".join(f"{path} (query {qid})" for qid, path in result.missing[:3])
        err.print(f"[yellow]warning:[/] {len(result.missing)} listed file(s) are not in the index of "
                  f"{result.root} and were left out, e.g. {example}", highlight=False)
    if result.dropped_queries:
        err.print(f"[yellow]warning:[/] {len(result.dropped_queries)} query(ies) have no listed file in the "
                  f"repository and were skipped", highlight=False)
    if not result.results:
        raise CodeseerError(f"{queries}: no query lists a file that exists in {result.root}; nothing to evaluate")

    name = f"{Path(result.root).name}/{queries.name}"
    versions = report.versions()
    records = [
        report.build_record(
            dataset=name, model=r.model, mode=r.mode, task="nl2code", dim=None, metrics=r.metrics,
            encode_seconds=None, queries_per_second=r.queries_per_second, n_queries=result.n_queries,
            n_docs=result.n_files, package_versions=versions,
            extra={"level": "file", "chunks_per_query": k if r.mode != "bm25-files" else None,
                   "index_model": result.model, "index_seconds": round(result.index_seconds, 3),
                   "missing_files": len(result.missing)},
        )
        for r in result.results
    ]
    _print_table(report.results_table(records, report.REPO_COLUMNS, encode=False,
                                      title=f"{name}: {result.n_queries} queries, {result.n_files} files"))
    if json_path is not None:
        report.save_records(json_path, records)
        err.print(f"[dim]results: {json_path}[/]")
