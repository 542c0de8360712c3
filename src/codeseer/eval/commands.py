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

from codeseer.errors import CodeseerError
from codeseer.render import console

__all__ = ["eval_command", "eval_repo_command"]

out = console()
err = console(stderr=True)  # messages stay one line when piped

MODES = ("dense", "lexical", "hybrid")
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
        "--compare", help="Compare two --json result files: A, B and B − A per dataset, model and mode "
        "(also eval-repo's); a dataset and mode run with one model in A and another in B is paired too: "
        "old model against new, with paired p-values.",
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
    path: Annotated[Path, typer.Argument(
        help="A repository to search (indexed first, incrementally), or a benchmark folder: NAME/queries.jsonl "
             "+ NAME/snapshot.tar.gz for each repository (what `codeseer data repo-tasks` writes).",
        show_default=False, metavar="REPO_DIR|BENCHMARK")],
    queries: Annotated[Optional[Path], typer.Argument(
        help='With REPO_DIR: JSON lines {"_id": "1", "text": "bug report or change", "files": ["src/a.py"]}.',
        show_default=False, metavar="[QUERIES.jsonl]")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="Model for a new index (an existing index keeps its own). Default: codeseer-code-mini.",
        show_default=False)] = None,
    mode: Annotated[Optional[list[str]], typer.Option(
        "--mode", help="locate (the file ranker of `codeseer locate`), or a chunk search ranking files by their "
                       "best chunk: hybrid, dense, lexical. Repeatable. Default: locate.",
        show_default=False)] = None,
    include: Annotated[Optional[list[str]], typer.Option(
        "--include", help="File kinds ranked besides source: test, docs, types, build, example, config "
                          "(comma-separated or repeated).", show_default=False)] = None,
    loro: Annotated[bool, typer.Option(
        "--loro", help="Score each repository of a benchmark with ranker weights fitted on the others "
                       "(leave-one-repo-out): the honest number for repositories the shipped weights were fitted on.")] = False,
    weights: Annotated[Optional[Path], typer.Option(
        "--weights", help="File ranker weights to use instead of the shipped ones (from --save-weights).",
        show_default=False)] = None,
    save_weights: Annotated[Optional[Path], typer.Option(
        "--save-weights", help="Fit the ranker's weights on every query of the benchmark and save them here "
                               "(use with `locate --weights`, or to refit the shipped ones).",
        show_default=False)] = None,
    index_dir: Annotated[Optional[Path], typer.Option(
        "--index", help="Index folder, for REPO_DIR QUERIES.jsonl (default: REPO_DIR/.codeseer).",
        show_default=False)] = None,
    work_dir: Annotated[Optional[Path], typer.Option(
        "--work", help="Where snapshots are unpacked and indexed (default: $CODESEER_CACHE/repo-tasks).",
        show_default=False)] = None,
    k: Annotated[int, typer.Option("-k", "--top", min=1, max=1000,
                                   help="Chunk hits fetched per query by the chunk modes.")] = 100,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline",
                                           help="Also rank whole files by BM25 (bm25-files), the baseline of the "
                                                "significance table.")] = True,
    json_path: Annotated[Optional[Path], typer.Option(
        "--json", help="Save the results as a JSON list of records (same format as `codeseer eval`).",
        show_default=False)] = None,
) -> None:
    """Which files does a change touch? File-level Recall@1/5/10 and MRR@10 on real repositories.

    Each query is answered like `codeseer locate` (mode locate) or by chunk search (a file scores as
    its best chunk); the baseline ranks whole files by BM25 among every file in the answers'
    languages, tests included. A benchmark of several repositories is scored per repository and
    pooled over all queries, each run against the baseline with a paired significance test.

    Examples:

      codeseer eval-repo . changes.jsonl

      codeseer eval-repo ../shared/datasets/repos-dev --loro --mode locate --mode dense

      codeseer data repo-tasks ~/src/flask --out flask-tasks && codeseer eval-repo flask-tasks

      codeseer eval-repo repos-dev --save-weights my-weights.json   # refit the file ranker

    changes.jsonl, one query per line:
      {"_id": "12", "text": "retries do not back off", "files": ["src/net/retry.py"]}
    """
    from codeseer.eval import report
    from codeseer.eval.repo import LOCATE_MODE, REPO_MODES, evaluate_repos, fit_on, load_tasks
    from codeseer.index.filekinds import ranked_kinds

    modes = _check_modes(mode, REPO_MODES, (LOCATE_MODE,))
    kinds = ranked_kinds(include)
    try:
        tasks = load_tasks(path, queries)  # fail fast: before indexing
    except (ValueError, FileNotFoundError) as e:
        raise CodeseerError(str(e)) from None
    if index_dir is not None and len(tasks) > 1:
        raise CodeseerError("--index is for one repository; a benchmark's indexes live under --work")
    if (loro or save_weights) and LOCATE_MODE not in modes:
        raise CodeseerError("--loro and --save-weights fit the file ranker: add --mode locate")
    shipped = None
    if weights is not None:
        from codeseer.search.files import load_weights

        shipped = load_weights(weights)

    def prepared(p) -> None:
        err.print(f"[dim]{p.task.name}: {p.n_files} files indexed at {p.index_dir} ({p.index_seconds:.1f}s), "
                  f"{len(p.qrels)} queries[/]", highlight=False)
        if p.missing:
            example = ", ".join(f"{path} (query {qid})" for qid, path in p.missing[:3])
            err.print(f"[yellow]warning:[/] {p.task.name}: {len(p.missing)} listed file(s) are not in the index "
                      f"and were left out, e.g. {example}", highlight=False)
        if p.dropped_queries:
            err.print(f"[yellow]warning:[/] {p.task.name}: {len(p.dropped_queries)} query(ies) have no listed "
                      "file in the repository and were skipped", highlight=False)

    def indexed(rep) -> None:
        err.print(f"[dim]index: {rep.index_dir} ({rep.files} files, {rep.chunks} chunks, "
                  f"{rep.embedded_chunks} embedded, {rep.seconds:.1f}s) model: {rep.model}[/]", highlight=False)

    try:
        result = evaluate_repos(tasks, modes=modes, weights=shipped, loro=loro, on_prepared=prepared, model=model,
                                index_dir=index_dir, work_dir=work_dir, kinds=kinds, k=k, baseline=baseline,
                                progress=err.is_terminal, on_indexed=indexed)
    except ValueError as e:
        raise CodeseerError(str(e)) from None
    scored = [p for p in result.repos if p.qrels]
    if not scored:
        raise CodeseerError(f"{path}: no query lists a file that exists in its repository; nothing to evaluate")

    versions = report.versions()
    name = path.resolve().name
    single = len(result.repos) == 1

    def record(dataset, r, n_queries, n_files, extra=None):
        return report.build_record(
            dataset=dataset, model=r.model, mode=r.mode, task="nl2code", dim=None, metrics=r.metrics,
            encode_seconds=None, queries_per_second=r.queries_per_second, n_queries=n_queries, n_docs=n_files,
            package_versions=versions,
            extra={"level": "file", "chunks_per_query": k if r.mode in ("hybrid", "dense", "lexical") else None,
                   "kinds": kinds, "per_query": r.per_query, **(extra or {})},
        )

    records = []
    for p in scored:
        dataset = f"{name}/{queries.name}" if single and queries is not None else (
            name if single else f"{name}/{p.task.name}")
        for r in p.results:
            extra = {"index_model": p.model, "index_seconds": round(p.index_seconds, 3), "missing_files": len(p.missing)}
            if r.mode == LOCATE_MODE:
                w = result.weights.get(p.task.name) or result.weights.get("weights")
                extra["ranker_weights"] = w.to_dict() if w is not None else None
                extra["loro"] = loro
            records.append(record(dataset, r, len(p.qrels), p.n_files, extra))
    if len(scored) > 1:
        for r in result.pooled:
            records.append(record(f"{name} (pooled)", r, sum(len(p.qrels) for p in scored),
                                  sum(p.n_files for p in scored), {"loro": loro} if r.mode == LOCATE_MODE else None))
    title = f"{name}: {sum(len(p.qrels) for p in scored)} queries in {len(scored)} repositories" + (
        ", locate scored leave-one-repo-out" if loro else "")
    _print_table(report.results_table(records, report.REPO_COLUMNS, encode=False, title=title))
    if baseline:
        _print_table(report.baseline_table(records, lambda r: r["mode"] == "bm25-files",
                                           metrics=report.REPO_SIGNIFICANCE_METRICS))
    if save_weights is not None:
        fitted = fit_on(scored, note=f"fitted by codeseer eval-repo {name} on {sum(len(p.qrels) for p in scored)} queries")
        fitted.save(save_weights)
        shown = ", ".join(f"{n} {w:+.3f}" for n, w in fitted.weights.items())
        err.print(f"[dim]weights fitted on every query: {shown}; saved to {save_weights}[/]", highlight=False)
    if json_path is not None:
        report.save_records(json_path, records)
        err.print(f"[dim]results: {json_path}[/]")
