"""CLI front-end of the retrieval applications (registered in :mod:`codeseer.cli`).

Imports stay light at module level: numpy, lancedb and the model load only when a command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from codeseer.errors import CodeseerError
from codeseer.index.filekinds import parse_kinds
from codeseer.render import console, counted, display_path, kind_tag, print_hit

out = console()
err = console(stderr=True)

IndexOpt = Annotated[Optional[Path], typer.Option("--index", help="Index folder (default: found in this folder or a parent).")]
LangOpt = Annotated[Optional[list[str]], typer.Option("--lang", "-l", help="Only these languages (repeatable): py, java, cs, ...")]
PathOpt = Annotated[Optional[str], typer.Option("--path", help="Only paths matching this glob, e.g. 'src/**/*.py'.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
RepoOpt = Annotated[Optional[list[str]], typer.Option("--repo", "-r", help="Only these repos of an index of several (repeatable).")]
KindOpt = Annotated[Optional[list[str]], typer.Option(
    "--kind", help="Only files of these kinds: source, test, docs, types, build, example, config (comma-separated or "
                   "repeated).")]
LOCATION_HELP = ("PATH:LINE of the code (the chunk containing that line); in an index of several repos "
                 "REPO/PATH:LINE, or a path inside one of the roots.")


def _searcher(index_dir: Path | None):
    from codeseer.search.searcher import open_searcher

    return open_searcher(index_dir)


def answer(op: str, index_dir: Path | None, args: dict) -> dict:
    """A query's answer (:func:`codeseer.apps.queries.run`): from the index's warm query process when
    one runs (:mod:`codeseer.serve.warm`; this then imports nothing heavy), else computed here."""
    from codeseer.serve import warm

    directory = warm.index_dir_for(index_dir) if warm.enabled() else None
    if directory is not None:
        reply = warm.ask(directory, op, args)
        if reply is not None:
            return reply
    from codeseer.apps.queries import run

    return run(op, _searcher(directory or index_dir), args)


def _read_arg(value: str, what: str) -> str:
    """``-`` reads stdin (for long issue texts and snippets)."""
    if value == "-":
        if sys.stdin.isatty():
            raise CodeseerError(f"{what}: `-` reads from stdin, but nothing is piped in")
        return sys.stdin.read()
    return value


def _dump(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


# --------------------------------------------------------------------------- similar


def similar_command(
    location: Annotated[Optional[str], typer.Argument(help=LOCATION_HELP)] = None,
    code: Annotated[Optional[str], typer.Option("--code", help="A snippet to match instead; `-` reads it from stdin.")] = None,
    k: Annotated[int, typer.Option("-k", "--top", min=1, max=1000, help="Number of results.")] = 10,
    lang: LangOpt = None,
    path_glob: PathOpt = None,
    repo: RepoOpt = None,
    kind: KindOpt = None,
    index_dir: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find code similar to PATH:LINE or to a snippet, in any language (code -> code).

    The query chunk itself is left out. Documentation sections are not returned.

    Examples:

      codeseer similar src/cart.py:42

      codeseer similar web/Cart.java:10 --lang cs     # its C# twin

      codeseer similar api/src/cart.py:42 --repo web  # index of several repos: REPO/PATH:LINE

      pbpaste | codeseer similar --code - -k 5 --json
    """
    if (location is None) == (code is None):
        raise CodeseerError("give PATH:LINE or --code (use `--code -` to read a snippet from stdin), not both")
    parse_kinds(kind)  # a bad --kind fails before any work
    args = {"k": k, "lang": lang, "path_glob": path_glob, "repo": repo, "kind": kind, "cwd": str(Path.cwd())}
    if code is not None:
        args["code"] = _read_arg(code, "--code")
    else:
        args["location"] = location
    result = answer("similar", index_dir, args)
    if as_json:
        _dump(result)
        return
    q = result["query"]
    if "path" in q:
        err.print(f"[dim]similar to[/] {escape(display_path(q))}:{q['start_line']}-{q['end_line']} {escape(q['symbol'] or q['kind'])}")
    if not result["hits"]:
        err.print("no results")
    for hit in result["hits"]:
        print_hit(out, display_path(hit), hit["start_line"], hit["end_line"], hit["symbol"] or hit["kind"], hit["score"],
                   hit["text"], hit["language"], hit.get("file_kind"))


# --------------------------------------------------------------------------- dupes


def dupes_command(
    threshold: Annotated[float, typer.Option("--threshold", "-t", min=0.0, max=1.0, help="Cosine similarity at or above which two functions are near-duplicates.")] = 0.95,
    min_lines: Annotated[int, typer.Option("--min-lines", min=1, help="Ignore functions shorter than this.")] = 5,
    report: Annotated[Optional[Path], typer.Option("--report", help="Also write a report: FILE.md or FILE.html.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Show at most this many clusters.")] = None,
    lang: LangOpt = None,
    path_glob: PathOpt = None,
    index_dir: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Clusters of near-duplicate functions across the repository, largest first.

    Examples:

      codeseer dupes

      codeseer dupes --threshold 0.9 --min-lines 8 --report dupes.html
    """
    from codeseer.apps.dupes import find_dupes, render_html, render_markdown

    if report is not None and report.suffix.lower() not in (".md", ".html", ".htm"):
        raise CodeseerError(f"--report must end in .md or .html, not {report.name}")
    if threshold <= 0:
        raise CodeseerError("--threshold must be above 0")
    result = find_dupes(_searcher(index_dir), threshold=threshold, min_lines=min_lines, languages=lang,
                        path_glob=path_glob, max_clusters=limit)
    if report is not None:
        text = render_markdown(result) if report.suffix.lower() == ".md" else render_html(result)
        _write(report, text)
    if as_json:
        _dump(result.to_dict())
        return
    if not result.clusters:
        err.print(f"no near-duplicates among {counted(result.candidates, 'function')} (threshold {threshold})")
    for n, cluster in enumerate(result.clusters, 1):
        out.print(f"[bold]{n}.[/] {cluster.size} functions, similarity "
                  f"{cluster.min_similarity:.3f}-{cluster.max_similarity:.3f} (mean {cluster.mean_similarity:.3f})")
        for m in cluster.members:
            out.print(f"   [cyan]{escape(display_path(m))}[/]:[yellow]{m.start_line}-{m.end_line}[/] {escape(m.symbol or m.kind)} [dim]{m.similarity:.3f}[/]")
    if report is not None:
        err.print(f"[dim]report written to {report}[/]")


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CodeseerError(f"cannot write {path}: {exc.strerror or exc}") from exc


# --------------------------------------------------------------------------- locate


def locate_command(
    query: Annotated[str, typer.Argument(help="The issue, bug report or change description; `-` reads it from stdin.")],
    k: Annotated[int, typer.Option("-k", "--top", min=1, max=1000, help="Number of files.")] = 10,
    functions: Annotated[int, typer.Option("--functions", min=0, max=50, help="Functions listed per file.")] = 3,
    lang: LangOpt = None,
    path_glob: PathOpt = None,
    repo: RepoOpt = None,
    include: Annotated[Optional[list[str]], typer.Option(
        "--include", help="Rank these file kinds too, besides source: test, docs, types, build, example, config "
                          "(comma-separated or repeated).")] = None,
    weights: Annotated[Optional[Path], typer.Option(
        "--weights", help="File ranker weights saved by `codeseer eval-repo --save-weights` (default: shipped).",
        show_default=False)] = None,
    index_dir: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rank the files (and functions in them) most likely to need a change for an issue.

    Source files are ranked by whole-file BM25, path words, the best chunks' similarity, the modules
    and identifiers the text names (a `scope:` prefix, `file.py`, `backticked_names`, stack frames)
    and file size; tests, docs, type declarations and examples only with --include. Each file lists
    the functions that match best (a function the text names first). --json shows each file's features.

    Examples:

      codeseer locate "crash when the config file has an empty line"

      codeseer locate "printer: fix duplicative replacement in multiline mode" -k 5

      gh issue view 123 --json body -q .body | codeseer locate - -k 5 --json

      codeseer locate "flaky retry test" --include tests
    """
    parse_kinds(include, what="--include")  # a bad kind fails before any work
    args = {"query": _read_arg(query, "issue text"), "k": k, "functions": functions, "lang": lang,
            "path_glob": path_glob, "repo": repo, "include": include,
            "weights": str(weights.resolve()) if weights is not None else None}
    result = answer("locate", index_dir, args)
    if as_json:
        _dump(result)
        return
    if not result["files"]:
        err.print("no results")
    for n, f in enumerate(result["files"], 1):
        out.print(f"[bold]{n:>2}.[/] [bold cyan]{escape(display_path(f))}[/] [dim]{f['score']:.4f} ({counted(f['hits'], 'hit')})[/]"
                  f"{kind_tag(f.get('kind'))}")
        for fn in f["functions"]:
            out.print(f"      [yellow]{fn['start_line']}-{fn['end_line']}[/] {escape(fn['symbol'] or fn['kind'])} "
                      f"[dim]{fn['score']:.4f}[/]")


# --------------------------------------------------------------------------- context


def context_command(
    query: Annotated[str, typer.Argument(help="What you are about to write or change; `-` reads it from stdin.")],
    budget: Annotated[int, typer.Option("--budget", "-b", help="Token budget of the whole pack (index model's tokenizer, headers included).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="md (default) or json.")] = "md",
    lang: LangOpt = None,
    path_glob: PathOpt = None,
    repo: RepoOpt = None,
    kind: KindOpt = None,
    index_dir: IndexOpt = None,
) -> None:
    """Print a token-budgeted context pack of the most relevant code for a task.

    Chunks are merged when they overlap or touch, ordered by file then line, each under a
    `path:start-end` header; the markdown output never exceeds --budget tokens.

    Examples:

      codeseer context "add a retry option to the HTTP client" --budget 4000 > context.md

      codeseer context "parse the config" --budget 1500 --format json
    """
    if fmt not in ("md", "json"):
        raise CodeseerError(f"unknown format {fmt!r}; choose md or json")
    if budget < 1:
        raise CodeseerError(f"--budget must be at least 1 token, got {budget}")
    parse_kinds(kind)  # a bad --kind fails before any work
    pack = answer("context", index_dir, {"query": _read_arg(query, "task"), "budget": budget, "format": fmt,
                                         "lang": lang, "path_glob": path_glob, "repo": repo, "kind": kind})
    sys.stdout.write(pack["text"])
    err.print(f"[dim]{pack['tokens']}/{counted(pack['budget'], 'token')}, {counted(pack['blocks'], 'block')} from "
              f"{counted(pack['used_chunks'], 'chunk')}[/]")


# --------------------------------------------------------------------------- docs


def docs_command(
    location: Annotated[str, typer.Argument(help=LOCATION_HELP)],
    k: Annotated[int, typer.Option("-k", "--top", min=1, max=100, help="Number of results.")] = 5,
    index_dir: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Documentation (markdown/rst sections and docstrings) that describes the code at PATH:LINE.

    Examples:

      codeseer docs src/app.py:120
    """
    from codeseer.apps.locations import resolve_location
    from codeseer.apps.docs import docs_for

    searcher = _searcher(index_dir)
    in_repo, path, line = resolve_location(searcher, location)
    result = docs_for(searcher, path, line, k=k, repo=in_repo)
    if as_json:
        _dump(result.to_dict())
        return
    q = result.query
    err.print(f"[dim]documentation for[/] {escape(display_path(q))}:{q['start_line']}-{q['end_line']} {escape(q['symbol'] or q['kind'])}")
    if not result.hits:
        err.print("no documentation found")
    for hit in result.hits:
        label = f"{hit.kind}: {hit.title}" + (" (own)" if hit.own else "")
        if hit.kind == "section":
            print_hit(out, display_path(hit), hit.start_line, hit.end_line, label, hit.score, hit.text, hit.language)
        else:  # a docstring: its text, not the function's lines
            print_hit(out, display_path(hit), hit.start_line, hit.end_line, label, hit.score, None, hit.language)
            out.print("   " + escape(hit.text), soft_wrap=True)


def stale_docs_command(
    report: Annotated[Optional[Path], typer.Option("--report", help="Also write the report to FILE.md.")] = None,
    percentile: Annotated[float, typer.Option("--percentile", min=0.1, max=50.0, help="Flag docstrings below this percentile of the repository's docstring-body similarity ...")] = 5.0,
    z: Annotated[float, typer.Option("--z", max=0.0, help="... whose z-score is also at most this.")] = -1.5,
    lang: LangOpt = None,
    path_glob: PathOpt = None,
    index_dir: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Functions whose docstring no longer matches their body (low similarity for this repository).

    Runs the model on every documented function (body and docstring), so it takes a while on
    large repositories.

    Examples:

      codeseer stale-docs --report stale-docs.md
    """
    from codeseer.apps.docs import render_stale_markdown, stale_docs

    if report is not None and report.suffix.lower() != ".md":
        raise CodeseerError(f"--report must end in .md, not {report.name}")
    result = stale_docs(_searcher(index_dir), percentile=percentile, z_threshold=z, languages=lang, path_glob=path_glob)
    text = render_stale_markdown(result)
    if report is not None:
        _write(report, text)
        err.print(f"[dim]report written to {report}[/]")
    if as_json:
        _dump(result.to_dict())
        return
    sys.stdout.write(text)
