"""``codeseer data``: mine training pairs from source trees, and synthesise queries for them.

Registered in :mod:`codeseer.cli` as a sub-app (``app.add_typer(data_app, name="data")``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from codeseer.errors import CodeseerError
from codeseer.render import console

err = console(stderr=True)

data_app = typer.Typer(
    help="Training data for a code embedder: `data mine` (query, code) pairs from source trees, "
    "`data synth` developer-style queries for them with an OpenAI-compatible LLM; and benchmarks: "
    "`data mine-git` (commit message -> the functions it changed, with same-file hard negatives) from git "
    "histories; and benchmarks: `data repo-tasks` (commit subject -> changed files), for `codeseer eval-repo`.",
    no_args_is_help=True,
)


class _Bar:
    """A Rich progress bar on stderr when it is a terminal; a no-op callback otherwise."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.progress = None
        self.task = None
        self.label = label
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True)

    def __enter__(self):
        if self.progress is not None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def __call__(self, done: int, total: int) -> None:
        if self.progress is None:
            return
        if self.task is None:
            self.task = self.progress.add_task(self.label, total=total)
        self.progress.update(self.task, completed=done, total=total)


def _counts_table(title: str, counts: dict[str, int], what: str) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column(what)
    table.add_column("count", justify="right")
    for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(escape(str(key)), str(n))
    if not counts:
        table.add_row("[dim]none[/]", "0")
    return table


@data_app.command("mine")
def mine_command(
    paths: Annotated[list[str], typer.Argument(metavar="PATH...", help="Source folders (walked even if they are a site-packages or node_modules) or files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the pairs (JSON lines; written atomically).")],
    langs: Annotated[Optional[list[str]], typer.Option("--langs", help="Only these languages, comma-separated or repeated: py,js,ts,go,rust,java,c,cpp,... (default: all tree-sitter languages).")] = None,
    exclude: Annotated[Optional[list[str]], typer.Option("--exclude", help="BEIR folder, corpus.jsonl or a quoted glob of them (repeat the option for each): drop pairs whose code equals or near-duplicates (MinHash Jaccard >= 0.8) one of its documents.")] = None,
    max_per_file: Annotated[Optional[int], typer.Option("--max-per-file", min=1, help="At most N functions per file (a seeded random choice).")] = None,
    max_files: Annotated[Optional[int], typer.Option("--max-files", min=1, help="Mine a seeded random sample of N files.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for --max-per-file / --max-files sampling.")] = 0,
    doc_in_code: Annotated[float, typer.Option("--doc-in-code", min=0.0, max=1.0, help="Share of 'search' pairs whose code keeps its docstring / doc comment (the rest get the bare body).")] = 0.5,
    include_vendored: Annotated[bool, typer.Option("--include-vendored", help="Also walk vendored folders (node_modules, vendor, site-packages, ...) inside PATH.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Mine (query, code) training pairs from function docstrings, doc comments and names.

    Per function: docstring -> code (doc removed), its first sentence -> code, code -> docstring
    (code2nl), a developer-style search query written from the first sentence ("python get clipboard
    contents") -> code (kind 'search'), and the split name -> code; test code, licence / boilerplate / non-English docs and
    short bodies are filtered out, exact and near-duplicate code is kept once, and code from the
    --exclude corpora is dropped. Every count is reported.

    Examples:

      codeseer data mine ~/src/flask ~/src/requests --out pairs.jsonl

      codeseer data mine .venv/lib/python3.11/site-packages --langs py --exclude ../shared/datasets/cosqa-dev --json -o pairs.jsonl
    """
    from codeseer.data.mine import AtomicJsonlWriter, mine_pairs, resolve_languages

    for p in paths:
        if not Path(p).exists():
            raise CodeseerError(f"no such file or folder: {p}")
        if p.endswith(".jsonl") and Path(p).is_file():  # `--exclude a.jsonl b.jsonl`: b landed here
            raise CodeseerError(f"PATH {p} is a JSON lines file, not source: give each corpus its own --exclude "
                                "(--exclude a.jsonl --exclude b.jsonl) or quote a glob (--exclude 'datasets/*/corpus.jsonl')")
    resolve_languages(langs)  # a bad --langs fails before the output is touched
    writer = AtomicJsonlWriter(out)
    try:
        with _Bar("mining files", err.is_terminal) as bar:
            report = mine_pairs(paths, langs=langs, exclude=exclude or (), max_per_file=max_per_file, max_files=max_files,
                                seed=seed, include_vendored=include_vendored, doc_in_code=doc_in_code, on_pair=writer.write, progress=bar)
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    summary = report.summary() | {"out": str(out)}
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    err.print(f"[bold green]mined[/] {report.pair_count} pairs from {report.kept_functions} of {report.functions} functions "
              f"in {report.files} files in {report.seconds:.1f}s -> {escape(str(out))}", soft_wrap=True)
    if report.exclude_docs:
        err.print(f"[dim]{report.exclude_docs} corpus documents excluded from the data[/]")
    err.print(_counts_table("pairs per language", summary["by_language"], "language"))
    err.print(_counts_table("pairs per kind", summary["by_kind"], "kind"))
    err.print(_counts_table("removed (functions; docs for doc reasons)", summary["removed"], "reason"))
    if summary["skipped_files"]:
        err.print(_counts_table("files skipped by the walker", summary["skipped_files"], "reason"))


@data_app.command("repo-tasks")
def repo_tasks_command(
    git_dir: Annotated[Path, typer.Argument(metavar="GIT_DIR", help="A git repository (a checkout or a bare one).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write queries.jsonl and snapshot.tar.gz into.")],
    rev: Annotated[str, typer.Option("--rev", help="The snapshot's revision; commits reachable from it are read.")] = "HEAD",
    max_files: Annotated[int, typer.Option("--max-files", min=1, max=50, help="Keep commits that change 1..N non-test source files.")] = 3,
    max_queries: Annotated[Optional[int], typer.Option("--max-queries", min=1, help="A seeded random sample of N kept commits (default: all).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --max-queries sample.")] = 0,
    functions: Annotated[bool, typer.Option("--functions", help="Also list the functions each commit changed (diff hunks mapped to chunks at the parent commit).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Build a localisation benchmark from a git history: commit subject -> the source files it changed.

    Keeps non-merge commits whose subject describes a change (bump, merge, release, typo, lint and
    format commits are skipped, PR numbers stripped) and that change 1 to --max-files non-test source
    files, all present at --rev. Writes OUT/queries.jsonl ({"_id", "commit", "text", "files", ...}) and
    OUT/snapshot.tar.gz (the indexable files at --rev): score codeseer on it with `codeseer eval-repo OUT`.

    Examples:

      codeseer data repo-tasks ~/src/flask --out bench/flask --max-queries 100

      codeseer data repo-tasks . --out my-tasks --functions && codeseer eval-repo my-tasks
    """
    from codeseer.data.repo_tasks import write_repo_tasks

    with _Bar("reading commits", err.is_terminal) as bar:
        report = write_repo_tasks(git_dir, out, rev=rev, max_files=max_files, max_queries=max_queries, seed=seed,
                                  functions=functions, on_commit=lambda n: bar(n, n))
    if as_json:
        sys.stdout.write(json.dumps(report.__dict__, indent=2) + "\n")
        return
    err.print(f"[bold green]wrote[/] {report.queries} queries from {report.counts.get('commits', 0)} commits and a "
              f"snapshot of {report.snapshot_files} files at {report.commit[:12]} in {report.seconds:.1f}s -> "
              f"{escape(str(out))}", soft_wrap=True)
    err.print(_counts_table("commits", report.counts, "kept / left out because"))


@data_app.command("mine-git")
def mine_git_command(
    git_dirs: Annotated[list[Path], typer.Argument(metavar="GIT_DIR...", help="Git repositories (checkouts or bare).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the pairs (JSON lines; written atomically).")],
    exclude_names: Annotated[Optional[Path], typer.Option("--exclude-names", envvar="CODESEER_EXCLUDE_REPOS", help="A file of sha256 digests of lowercased owner/name or package names that must never be mined (evaluation repositories); a repository whose remote owner/name or folder name is listed is refused.")] = None,
    exclude: Annotated[Optional[list[str]], typer.Option("--exclude", help="BEIR folder or corpus.jsonl (repeatable): drop pairs whose code equals or near-duplicates one of its documents.")] = None,
    rev: Annotated[str, typer.Option("--rev", help="Read the commits reachable from this revision.")] = "HEAD",
    max_files: Annotated[int, typer.Option("--max-files", min=1, max=50, help="Keep commits that change 1..N non-test source files.")] = 5,
    negatives: Annotated[int, typer.Option("--negatives", min=0, max=64, help="Hard negatives per pair: functions of the same files the commit did not touch, nearest first.")] = 7,
    max_commits: Annotated[Optional[int], typer.Option("--max-commits", min=1, help="At most N qualifying commits per repository (newest first).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Mine training pairs from git histories: commit subject (and body) -> each function it changed.

    The code is taken as it was at the parent commit (what the developer was looking at); the
    functions of the same files that the commit did not touch come along as hard negatives. Commits
    are kept as for `data repo-tasks` (no merges, bumps, releases, typo/lint fixes; 1..--max-files
    non-test source files). Repositories on the --exclude-names list are refused before anything is
    read. Counts per filter, language and kind are reported.

    Examples:

      codeseer data mine-git ~/src/flask ~/src/cobra --out commits.jsonl --exclude-names exclude.sha256

      codeseer data mine-git repos/* -o commits.jsonl --exclude ../shared/datasets/cosqa-dev --json
    """
    from codeseer.data.mine import AtomicJsonlWriter
    from codeseer.data.mine_git import load_excluded_names, mine_git

    names = load_excluded_names(exclude_names)
    if exclude_names is None:
        err.print("[yellow]no --exclude-names list: evaluation repositories are not checked[/]")
    writer = AtomicJsonlWriter(out)
    try:
        with _Bar("reading commits", err.is_terminal) as bar:
            report = mine_git(git_dirs, rev=rev, max_files=max_files, max_negatives=negatives, max_commits=max_commits,
                              exclude=exclude or (), excluded_names=names, on_pair=writer.write,
                              progress=lambda repo, n: bar(n, n))
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    summary = report.to_dict() | {"out": str(out)}
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    err.print(f"[bold green]mined[/] {report.pairs} pairs ({report.negatives} hard negatives) from "
              f"{report.commits.get('kept', 0)} of {report.commits.get('commits', 0)} commits in "
              f"{len(report.repos)} repositories in {report.seconds:.1f}s -> {escape(str(out))}", soft_wrap=True)
    err.print(_counts_table("pairs per language", report.by_language, "language"))
    err.print(_counts_table("pairs per kind", report.by_kind, "kind"))
    err.print(_counts_table("commits", report.commits, "kept / left out because"))
    if report.removed:
        err.print(_counts_table("pairs removed", report.removed, "reason"))


@data_app.command("synth")
def synth_command(
    pairs: Annotated[Path, typer.Argument(metavar="PAIRS.jsonl", help="Pairs from `codeseer data mine`; one query per distinct nl2code positive.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to append the synthetic pairs (functions already there are skipped: resumable).")],
    base_url: Annotated[str, typer.Option("--base-url", help="OpenAI-compatible API root, e.g. http://localhost:8000/v1 (POST /chat/completions).")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model name (default: the first one GET /models lists).")] = None,
    api_key_env: Annotated[Optional[str], typer.Option("--api-key-env", help="Environment variable holding the API key (default: OPENAI_API_KEY if set).")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-j", min=1, max=256, help="Requests in flight.")] = 4,
    limit: Annotated[Optional[int], typer.Option("--limit", min=0, help="Only the first N distinct functions of PAIRS.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds per request.")] = 60.0,
    retries: Annotated[int, typer.Option("--retries", min=0, max=20, help="Retries on 429 / 5xx / timeouts, with exponential backoff.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Ask an LLM for one short developer-style search query per mined function (the Qodo-Embed recipe).

    Examples:

      codeseer data synth pairs.jsonl --out synthetic.jsonl --base-url http://localhost:8000/v1

      OPENAI_API_KEY=... codeseer data synth pairs.jsonl -o syn.jsonl --base-url https://api.openai.com/v1 --model gpt-4o-mini --limit 1000
    """
    from codeseer.data.synth import synth_queries

    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise CodeseerError(f"--api-key-env {api_key_env}: that environment variable is not set")
    else:
        api_key = os.environ.get("OPENAI_API_KEY") or None
    with _Bar("synthesising queries", err.is_terminal) as bar:
        report = synth_queries(pairs, out, base_url=base_url, model=model, api_key=api_key, concurrency=concurrency,
                               limit=limit, timeout=timeout, retries=retries, progress=bar)
    summary = report.summary() | {"out": str(out)}
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    rejected = ", ".join(f"{n} {why}" for why, n in sorted(report.rejected.items())) or "none"
    err.print(f"[bold green]wrote[/] {report.written} synthetic pairs ({report.already_done} already done, "
              f"{report.failed} failed, {report.malformed} malformed answers, rejected: {rejected}; "
              f"{report.retries} retries) in {report.seconds:.1f}s -> {escape(str(out))}", soft_wrap=True)
