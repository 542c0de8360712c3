"""``codeseer models`` and ``codeseer embed``: plain Typer-annotated functions registered by cli.py.

Importing this module is cheap (no torch): the model stack loads inside ``embed_command`` only.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Annotated, Optional

import typer
from rich.table import Table

from codeseer.errors import CodeseerError
from codeseer.render import console
from codeseer.models.registry import all_recipes
from codeseer.models.tasks import DEFAULT_TASK, QUERY, TASKS, check_role

out = console()
err = console(stderr=True)

PREVIEW_DIMS = 6
PREVIEW_TEXT = 60


OFFLINE_USE = {"codeseer-code-mini": "the default", "codeseer-code-static": "--fast"}


def models_command(
    name: Annotated[Optional[str], typer.Argument(help="One model (a hub id, an alias or an offline model): all its details.")] = None,
    wide: Annotated[bool, typer.Option("--wide", help="Every column of the recipe table (prompts, remote code, licence); needs a wide terminal.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"offline": [...], "recipes": [...]} with every field (with NAME: that model).')] = False,
) -> None:
    """List the models that work offline, then the code embedding models codeseer has recipes for.

    Offline models ship inside codeseer (codeseer-code-mini, the default; codeseer-code-static, the
    --fast tier) or come with the [train] extra (all-MiniLM-L6-v2): `--model NAME` uses them with no
    download. A recipe says how to run a hub model: family, pooling, dimensions (and Matryoshka ones),
    maximum length, per-task prefixes, remote code and licence; `codeseer models NAME` shows them all.
    Use one with `codeseer embed --model HUB_ID`, or on a local mirror of the weights with
    `--model ./folder --recipe HUB_ID`. Join models with `+` (`--model codeseer-code-mini+./all-mpnet-base-v2`)
    for an ensemble that scores by their mean cosine.

    Examples:

      codeseer models

      codeseer models jinaai/jina-code-embeddings-0.5b

      codeseer models --json | jq '.offline[] | select(.default) | .name'
    """
    from codeseer.models.embedder import offline_models
    from codeseer.models.registry import find_recipe

    offline = offline_models()
    recipes = all_recipes()
    if name is not None:
        recipe = find_recipe(name)
        wanted = {name.lower(), f"sentence-transformers/{name.lower()}"} | ({recipe.hub_id.lower()} if recipe else set())
        chosen = next((m for m in offline if m["name"].lower() in wanted), None)
        if chosen is None and recipe is None:
            known = ", ".join([m["name"] for m in offline] + [r.hub_id for r in recipes])
            raise CodeseerError(f"no model {name!r}; known: {known}")
        data = {"offline": chosen, "recipe": recipe.to_dict() if recipe else None}
        if as_json:
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            return
        _print_details(data)
        return
    if as_json:
        payload = {"offline": offline, "recipes": [r.to_dict() for r in recipes]}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    local = Table(title="offline models (no download)", show_lines=False, title_justify="left")
    for col in ("model", "use", "dim", "max len", "size"):
        local.add_column(col, no_wrap=True)
    for m in offline:
        shown = m["name"].removeprefix("sentence-transformers/")
        label = f"[bold]{shown}[/]" if m["default"] else shown
        use = OFFLINE_USE.get(m["name"], "--model minilm")
        if not m["installed"]:
            hint = "reinstall codeseer" if m["name"] in OFFLINE_USE else "pip install 'codeseer[train]'"
            local.add_row(label, f"{use} [red](missing: {hint})[/]", "-", "-", "-")
            continue
        size = f"{m['size_mb']:.0f}MB" if m["size_mb"] else "-"
        local.add_row(label, use, str(m["dim"]), str(m["max_seq_length"] or "-"), size)
    out.print(local)
    table = Table(title="code embedding models (codeseer recipes)", show_lines=False, title_justify="left")
    table.add_column("model", no_wrap=True)
    columns = ("family", "pooling", "dim", "matryoshka", "max len", "prompts", "remote code", "licence") if wide else (
        "pooling", "dim", "max len")
    for col in columns:
        table.add_column(col, no_wrap=not wide, overflow="fold")
    for r in recipes:
        name_cell = f"{r.hub_id} [red](nc)[/]" if r.non_commercial and not wide else r.hub_id
        row = {"family": r.family, "pooling": r.pooling, "dim": str(r.native_dim),
               "matryoshka": "/".join(map(str, r.matryoshka_dims)) or "-", "max len": str(r.max_seq_length),
               "prompts": _prompts(r), "remote code": "yes" if r.trust_remote_code else "no",
               "licence": f"[red]{r.license} (non-commercial)[/]" if r.non_commercial else r.license}
        table.add_row(name_cell, *(row[c] for c in columns))
    out.print(table)
    if not wide:
        if any(r.non_commercial for r in recipes):
            out.print("[red](nc)[/]: non-commercial licence")
        out.print("`codeseer models NAME`: one model in full; `--wide`: every column")


def _prompts(r) -> str:
    if not r.prompts:
        return "none"
    if r.asymmetric and len(r.supported_tasks) == len(TASKS) and len(r.prompts) == 1:
        return "query only"
    return ", ".join(r.supported_tasks)


def _print_details(data: dict) -> None:
    """One model, one ``key: value`` per line (reads at any width)."""
    from rich.markup import escape

    if data["offline"]:
        m = data["offline"]
        out.print(f"[bold]{escape(m['name'])}[/] (offline: {escape(OFFLINE_USE.get(m['name'], '--model minilm'))})")
        for key in ("role", "installed", "location", "dim", "max_seq_length", "size_mb"):
            out.print(f"  {key}: {escape(str(m[key]))}")
    r = data["recipe"]
    if r:
        out.print(f"[bold]{escape(r['hub_id'])}[/] (recipe)")
        for key in ("family", "pooling", "native_dim", "matryoshka_dims", "max_seq_length", "asymmetric", "append_eos",
                    "trust_remote_code", "license", "non_commercial", "aliases", "notes"):
            out.print(f"  {key}: {escape(str(r[key]))}")
        for task, roles in r["prompts"].items():
            for role, prefix in roles.items():
                out.print(f"  prompt {task} {role}: {escape(repr(prefix))}")
        for source in r["sources"]:
            out.print(f"  source: {escape(source)}")


def _preview(vector, dims: int = PREVIEW_DIMS) -> str:
    head = ", ".join(f"{x:+.4f}" for x in vector[:dims])
    return f"[{head}{', ...' if len(vector) > dims else ''}]"


def embed_command(
    texts: Annotated[list[str], typer.Argument(help="Texts to embed ('-' reads one text per line from stdin).")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Hub id (registry recipes apply automatically) or a local model folder; A+B: an ensemble (mean cosine).")] = None,
    recipe: Annotated[Optional[str], typer.Option("--recipe", help="Apply this registry recipe (hub id) to local weights, e.g. a mirrored folder.")] = None,
    task: Annotated[str, typer.Option("--task", "-t", help=f"Task whose prefixes to use: {', '.join(TASKS)}.")] = DEFAULT_TASK,
    role: Annotated[str, typer.Option("--role", "-r", help="Embed as a query or as a document.")] = QUERY,
    pooling: Annotated[Optional[str], typer.Option("--pooling", help="Force last|mean|cls pooling on a transformer folder.")] = None,
    dim: Annotated[Optional[int], typer.Option("--dim", min=1, help="Truncate to N dimensions (Matryoshka) and re-normalise.")] = None,
    backend: Annotated[Optional[str], typer.Option("--backend", help="torch or onnx (default: the bundled models' shipped ONNX graph, else torch; other models' ONNX is exported once and cached under ~/.cache/codeseer/onnx).")] = None,
    int8: Annotated[bool, typer.Option("--int8", help="With --backend onnx: dynamic int8 quantisation.")] = False,
    max_seq_length: Annotated[Optional[int], typer.Option("--max-length", min=1, help="Truncate texts to N tokens (default: the recipe's or the model's).")] = None,
    trust_remote_code: Annotated[Optional[bool], typer.Option("--trust-remote-code/--no-trust-remote-code", help="Allow (or forbid) custom model code shipped in the folder (default: the recipe's setting).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of {text, vector}.")] = False,
) -> None:
    """Embed TEXT... and print the vectors (L2-normalised float32).

    Examples:

      codeseer embed "read a csv file" "def load(path): ..."

      codeseer embed "parse json" --model jinaai/jina-code-embeddings-0.5b --task nl2code --dim 256

      codeseer embed "def f(x): ..." --model ./mirror/CodeRankEmbed --recipe nomic-ai/CodeRankEmbed --role document

      codeseer embed "sort a list" --model ./my-decoder --pooling last --json
    """
    from codeseer.models.factory import load_embedder

    if texts == ["-"]:
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise CodeseerError("nothing to embed: give one or more texts")
    role = check_role(role)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        embedder = load_embedder(model, recipe=recipe, task=task, pooling=pooling, dim=dim, backend=backend,
                            quantize=int8, max_seq_length=max_seq_length, trust_remote_code=trust_remote_code)
        vectors = embedder.encode(texts, role=role)
    seen = set()
    for w in caught:
        msg = str(w.message)
        if msg not in seen and w.category.__name__ == "CodeseerWarning":
            seen.add(msg)
            err.print(f"[yellow]warning:[/] {msg}", highlight=False)
    if as_json:
        payload = [{"text": t, "vector": [float(x) for x in v]} for t, v in zip(texts, vectors)]
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    d = embedder.describe()
    prefix = embedder.query_prefix if role == QUERY else embedder.document_prefix
    err.print(
        f"[dim]model {d['model']}  recipe {d['recipe'] or '-'}  {d['family']}/{d['pooling']}  backend {d['backend']}  "
        f"task {d['task']}  role {role}  prefix {prefix!r}[/]",
        highlight=False,
    )
    for text, vector in zip(texts, vectors):
        shown = text if len(text) <= PREVIEW_TEXT else text[: PREVIEW_TEXT - 1] + "…"
        out.print(f"{json.dumps(shown)}  dim={len(vector)}  {_preview(vector)}", highlight=False)


def distill_command(
    out_dir: Annotated[str, typer.Option("--out", "-o", help="Where to write the static model (a model2vec folder).")],
    base: Annotated[Optional[str], typer.Option("--base", "-m", help="Teacher: a sentence-transformers folder or hub id (default: codeseer-code-mini, bundled).")] = None,
    pairs: Annotated[Optional[list[str]], typer.Option("--pairs", "-p", help="`codeseer data mine` pairs (repeatable): fit the table to the teacher on a sample of their code and queries (recommended).")] = None,
    n_code: Annotated[int, typer.Option("--code-texts", min=1, help="Code texts to fit on.")] = 30000,
    n_queries: Annotated[int, typer.Option("--query-texts", min=0, help="Query texts to fit on.")] = 25000,
    pca_dims: Annotated[int, typer.Option("--pca-dims", min=2, help="Dimensions of the distilled table before fitting.")] = 256,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Passes over the texts while fitting (the best held-out epoch is kept).")] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Seed for sampling and fitting.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Distil a transformer into a static model (model2vec) for fast indexing: `index --model OUT`.

    Static models average one vector per token: no attention, ~10x faster than the int8 transformer on
    a CPU, at a cost in quality (measure it with `codeseer eval --model OUT`). With --pairs the token
    table is then fitted so that its averages reproduce the teacher's embeddings of real code and
    queries (model2vec's tokenlearn recipe); this is how the bundled codeseer-code-static was built.

    Examples:

      codeseer distill --out static-minilm

      codeseer distill --base ./my-model --pairs pairs.jsonl --out my-static --json
    """
    from codeseer.extras import need

    need("model2vec", "codeseer distill")
    from codeseer.models.distill import build_static

    say = (lambda msg: None) if as_json else (lambda msg: err.print(f"[dim]{msg}[/]"))
    report = build_static(base, out_dir, pairs=pairs or (), n_code=n_code, n_queries=n_queries, pca_dims=pca_dims,
                          epochs=epochs, seed=seed, say=say)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    fit = report.get("fit")
    detail = (f"fitted on {fit['texts']:,} texts: held-out cosine to the teacher {fit['held_cosine_start']:.3f} -> "
              f"{fit['held_cosine_best']:.3f}" if fit else "not fitted (give --pairs to fit it on code)")
    err.print(f"[bold green]static model[/] {out_dir}: {report['distill']['tokens']:,} tokens; {detail}")
