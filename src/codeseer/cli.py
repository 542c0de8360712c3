"""The ``codeseer`` command line: index a repository, then search it in plain language or code."""

from __future__ import annotations

import inspect
import json
import re
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from codeseer.errors import CodeseerError
from codeseer.render import console, counted, display_path, print_hit
from codeseer.eval.commands import eval_command, eval_repo_command
from codeseer.apps.commands import context_command, docs_command, dupes_command, locate_command, similar_command, stale_docs_command
from codeseer.serve.commands import mcp_command, serve_command
from codeseer.models.commands import distill_command, embed_command, models_command
from codeseer.train.commands import train_command
from codeseer.data.commands import data_app

app = typer.Typer(
    name="codeseer",
    help="Search code in plain language, offline. Start with `codeseer index` in a repository, "
    "then `codeseer search \"what you are looking for\"`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = console()
err = console(stderr=True)


@app.command()
def index(
    paths: Annotated[Optional[list[str]], typer.Argument(metavar="PATH|NAME=PATH", help="Repositories or folders to index (default: .); several share one --index, each a repo named after its folder unless NAME=PATH names it. With --index and no PATH: every repo that index holds.")] = None,
    index_dir: Annotated[Optional[Path], typer.Option("--index", help="Where to keep the index (default: PATH/.codeseer; required with several PATHs): a folder, or a URI (s3://, gs://, az://, file://) that search servers then read; at a URI nothing locks out a second writer.")] = None,
    rev: Annotated[Optional[str], typer.Option("--rev", help="Index this git revision (commit, tag, branch) from git objects instead of the working tree; a later --rev updates by git diff.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="sentence-transformers folder or hub id (default: codeseer-code-mini, bundled; all-MiniLM-L6-v2 is `minilm`); A+B joins models into an ensemble that scores by their mean cosine.")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Drop the existing index and build it again (e.g. to change model).")] = False,
    repair: Annotated[bool, typer.Option("--repair", help="Read the committed index in full; if it is damaged, fall back to the newest older snapshot that reads, else rebuild (reusing the vectors that still read); then update as usual.")] = False,
    recipe: Annotated[Optional[str], typer.Option("--recipe", help="Registry recipe (prefixes, pooling) for local weights, e.g. jinaai/jina-code-embeddings-0.5b; see `codeseer models`.")] = None,
    dim: Annotated[Optional[int], typer.Option("--dim", help="Matryoshka: keep the first N dimensions (re-normalised).")] = None,
    precision: Annotated[Optional[str], typer.Option("--precision", help="Stored vectors: float32 (default), float16, int8 (calibrated) or binary; int8/binary are rescored with the full-precision query.")] = None,
    backend: Annotated[str, typer.Option("--backend", help="torch, onnx (exported once and cached), or auto: the fastest on this CPU (ONNX int8 with VNNI, else torch bf16 with AVX512-BF16/AMX, else ONNX); int8 costs ~0.4 nDCG@10 on cosqa-dev, pass torch or onnx for exact vectors.")] = "auto",
    int8: Annotated[bool, typer.Option("--int8", help="With --backend onnx: dynamic int8 quantisation (about 2x faster, cosine >= 0.99).")] = False,
    bf16: Annotated[bool, typer.Option("--bf16", help="With --backend torch: bf16 autocast (about 2.5x faster where the CPU has AVX512-BF16/AMX; cosine 0.9999).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="ADDRESS", help="Embed on a Ray cluster, one model per actor: auto (RAY_ADDRESS or the cluster running here), local (start Ray in this process) or HOST:PORT. Every node needs codeseer installed and the model at the same path.")] = None,
    ray_actors: Annotated[Optional[int], typer.Option("--ray-actors", min=1, help="With --ray: number of actors (default: one per GPU, else one per node using all its CPUs).")] = None,
    ann: Annotated[str, typer.Option("--ann", help="Vector index for large indexes (IVF_PQ, rescored exactly): auto (from 100k chunks, or CODESEER_ANN_MIN_CHUNKS), on, or off (exact search).")] = "auto",
    fast: Annotated[bool, typer.Option("--fast", help="Use the bundled static model codeseer-code-static: ~10x faster than the default transformer on a CPU, lower quality (see its model card); same as --model codeseer-code-static.")] = False,
) -> None:
    """Index PATH: chunk source files with tree-sitter, embed new chunks, update the BM25 index.

    Re-running is incremental: only changed files are read and only new chunks are embedded.
    Killing it at any moment leaves the previous index searchable.

    Several PATHs make one index of several repos (hits then show REPO/PATH, and path arguments of
    other commands take that form); indexing some of them again leaves the others as they are.

    Examples:

      codeseer index                      # this folder, into ./.codeseer

      codeseer index ~/src/flask --json   # machine-readable summary

      codeseer index . --rebuild --model ./my-model   # switch to another local model

      codeseer index ~/src/api web=~/src/frontend --index ~/idx   # two repos, one index

      codeseer index . --rev v2.1 --json   # the tagged release, not the working tree

      codeseer index . --ray 10.0.0.5:6379 --ray-actors 8   # embed on a Ray cluster

      codeseer index ~/src/monorepo --fast   # static model: a big tree in minutes

      codeseer index . --rebuild --model codeseer-code-mini+sentence-transformers/all-mpnet-base-v2   # ensemble: slower, better
    """
    from codeseer.index.indexer import index_repository, split_root_spec
    from codeseer.models.embedder import STATIC_MODEL

    if fast:
        if model is not None and model != STATIC_MODEL:
            raise CodeseerError(f"--fast uses {STATIC_MODEL}: drop --model {model} or --fast")
        model = STATIC_MODEL

    roots = [split_root_spec(p) for p in paths] if paths else None
    if ray_actors is not None and ray is None:
        raise CodeseerError("--ray-actors needs --ray ADDRESS (auto, local or HOST:PORT)")
    try:
        report = index_repository(roots, index_dir=index_dir, rev=rev, model=model, rebuild=rebuild, precision=precision, recipe=recipe, dim=dim, backend=backend, int8=int8, bf16=bf16, progress=False if as_json else ("bar" if err.is_terminal else "lines"), repair=repair, ray_address=ray, ray_actors=ray_actors, ann=ann)
    except KeyboardInterrupt as exc:  # click would swallow it: say what the run kept (its journal)
        err.print(f"[yellow]{escape(str(exc) or 'interrupted')}[/]", highlight=False)
        raise typer.Exit(130) from None
    for line in report.repaired:
        err.print(f"repair: {line}", highlight=False, markup=False, soft_wrap=True)
    if as_json:
        sys.stdout.write(json.dumps(report.__dict__, indent=2) + "\n")
        return
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(report.skipped.items())) or "none"
    err.print(
        f"[bold green]indexed[/] {counted(report.files, 'file')}, {counted(report.chunks, 'chunk')} in {report.seconds:.1f}s "
        f"({report.changed_files} changed, {report.deleted_files} deleted, {counted(report.embedded_chunks, 'chunk')} embedded, "
        f"{report.reused_chunks} reused ({report.cached_chunks} from the machine-wide cache); skipped: {skipped})\n[dim]index: {report.index_dir}  model: {report.model}[/]",
        soft_wrap=True,
    )
    if report.rev is not None:
        diff = "no earlier revision to diff against" if report.diff_files is None else f"git diff touched {report.diff_files} files"
        commits = ", ".join(f"{name} {commit[:12]}" for name, commit in report.commits.items())
        err.print(f"[dim]rev {escape(report.rev)}: {escape(commits)}; {diff}, {report.blobs_read} files read from git[/]",
                  soft_wrap=True)
    if report.ray_nodes:
        nodes = len(report.ray_nodes)
        err.print(f"[dim]ray: {sum(report.ray_nodes.values())} chunks embedded on {nodes} node{'s' * (nodes != 1)}[/]")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What you are looking for, in words or code.")],
    index_dir: Annotated[Optional[Path], typer.Option("--index", help="Index folder or URI such as s3://bucket/idx (default: found in this folder or a parent).")] = None,
    k: Annotated[int, typer.Option("-k", "--top", min=1, max=1000, help="Number of results.")] = 10,
    lang: Annotated[Optional[list[str]], typer.Option("--lang", "-l", help="Only these languages (repeatable): py, java, ts, go, ...")] = None,
    path_glob: Annotated[Optional[str], typer.Option("--path", help="Only paths matching this glob, e.g. 'src/**/*.py'.")] = None,
    repo: Annotated[Optional[list[str]], typer.Option("--repo", "-r", help="Only these repos of an index of several (repeatable).")] = None,
    kind: Annotated[Optional[list[str]], typer.Option("--kind", help="Only files of these kinds: source, test, docs, types, build, example, config (comma-separated or repeated).")] = None,
    flat: Annotated[bool, typer.Option("--flat", help="One list by score; by default code comes first and the best docs and tests hits (at most 3) follow it.")] = False,
    mode: Annotated[str, typer.Option("--mode", help="hybrid (dense + BM25), dense or lexical.")] = "hybrid",
    fusion: Annotated[str, typer.Option("--fusion", help="How hybrid mixes the two: convex (normalised scores, default) or rrf.")] = "convex",
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Must match the index's model.")] = None,
    task: Annotated[str, typer.Option("--task", help="Query role: nl2code (default), qa, code2code, code2nl, completion.")] = "nl2code",
    as_json: Annotated[bool, typer.Option("--json", help="Print results as a JSON list.")] = False,
) -> None:
    """Search the index: prints `path:start-end symbol score` and a snippet per hit.

    In an index of several repos a hit's path is shown as REPO/PATH (and JSON hits carry `repo`).
    Hits from files that are not source code are tagged with their kind ([test], [docs], ...).

    Examples:

      codeseer search "retry an operation that sometimes fails"

      codeseer search handle_user_exception --mode lexical

      codeseer search "parse a config file" --lang py --path 'src/**' -k 5 --json

      codeseer search "how do I configure the client" --kind docs
    """
    from codeseer.apps.commands import answer, parse_kinds

    if not query.strip():
        raise CodeseerError("empty query: say what you are looking for")
    parse_kinds(kind)  # a bad --kind fails before any work
    hits = answer("search", index_dir, {"query": query, "k": k, "mode": mode, "lang": lang, "path_glob": path_glob,
                                        "fusion": fusion, "repo": repo, "kind": kind, "model": model,
                                        "task": task, "flat": flat})["hits"]
    if as_json:
        sys.stdout.write(json.dumps(hits, indent=2) + "\n")
        return
    if not hits:
        err.print("no results")
        return
    from codeseer.index.filekinds import NON_CODE_KINDS

    code_seen = False
    for hit in hits:
        if not flat and not kind and code_seen and hit.get("file_kind") in NON_CODE_KINDS:
            out.print("[dim]── docs and tests ──[/]" if out.is_terminal else "-- docs and tests --")
            code_seen = False  # one separator
        code_seen = code_seen or hit.get("file_kind") not in NON_CODE_KINDS
        print_hit(out, display_path(hit), hit["start_line"], hit["end_line"], hit["symbol"] or hit["kind"], hit["score"],
                  hit["text"], hit["language"], hit.get("file_kind"))


app.command("eval")(eval_command)
app.command("eval-repo")(eval_repo_command)
app.command("similar")(similar_command)
app.command("dupes")(dupes_command)
app.command("locate")(locate_command)
app.command("context")(context_command)
app.command("docs")(docs_command)
app.command("stale-docs")(stale_docs_command)
app.command("serve")(serve_command)
app.command("mcp")(mcp_command)
app.command("models")(models_command)
app.command("embed")(embed_command)
app.command("distill")(distill_command)
app.command("train")(train_command)
app.add_typer(data_app, name="data")


def _reflow(text: str) -> str:
    """A docstring's paragraphs as single lines, so the terminal wraps them at its own width (typer keeps
    every newline: hard-wrapped docstrings broke mid-sentence at 80 columns); indented examples stay."""
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", inspect.cleandoc(text)):
        lines = paragraph.split("\n")
        if len(lines) > 1 and not any(line[:1].isspace() or line.lstrip()[:2] in ("- ", "* ") for line in lines):
            paragraph = " ".join(line.strip() for line in lines)
        paragraphs.append(paragraph)
    return "\n\n".join(paragraphs)


def _metavar(param) -> str:
    """What an option's value looks like in --help: N, X, the choices, or the option's own name."""
    desc = param.type_descriptor
    if desc.is_choice:
        return "|".join(str(c) for c in desc.choices or ())
    kind = desc.ranged_type_name if desc.is_ranged else param.bare_type()
    if "int" in kind:
        return "N"
    if "float" in kind:
        return "X"
    return max(param.opts, key=len).lstrip("-").upper().replace("-", "_")


def tidy(command):
    """The click command tree of ``app`` with readable help: reflowed docstrings, no ``<bool>`` or
    ``<list[str]>`` type labels (flags show nothing, values a name such as LANG or N)."""
    if command.help:
        command.help = _reflow(command.help)
    for param in command.params:
        if param.metavar is not None:
            continue
        if param.param_type_name == "option":
            param.metavar = "" if param.is_flag else _metavar(param)
        elif param.param_type_name == "argument":
            param.metavar = param.name.upper()
    for param in command.params:
        if param.param_type_name == "argument":  # its name says what it is; no <str> / <list[str]> beside it
            param.display_type_rich = lambda ctx: None
    make_help_option = command.get_help_option

    def get_help_option(ctx):  # click makes --help per call: give it no value label either
        option = make_help_option(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)
    return command


def main() -> None:
    try:
        tidy(typer.main.get_command(app))(prog_name="codeseer")
    except CodeseerError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
    except ModuleNotFoundError as exc:  # a package of an extra that is not installed (codeseer.extras)
        from codeseer.extras import missing_message

        message = missing_message(exc.name or "")
        if message is None:
            raise
        err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt as exc:
        err.print(f"[yellow]{escape(str(exc) or 'interrupted')}[/]", highlight=False)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
