"""``codeseer models`` and ``codeseer embed``: plain Typer-annotated functions registered by cli.py.

Importing this module is cheap (no torch): the model stack loads inside ``embed_command`` only.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from codeseer.errors import CodeseerError
from codeseer.models.registry import all_recipes
from codeseer.models.tasks import DEFAULT_TASK, QUERY, TASKS, check_role

out = Console()
err = Console(stderr=True)

PREVIEW_DIMS = 6
PREVIEW_TEXT = 60


def models_command(
    as_json: Annotated[bool, typer.Option("--json", help='Print {"offline": [...], "recipes": [...]} with every field.')] = False,
) -> None:
    """List the models that work offline, then the code embedding models codeseer has recipes for.

    Offline models ship inside codeseer (codeseer-code-mini, the default; codeseer-code-static, the
    --fast tier) or come with it (all-MiniLM-L6-v2): `--model NAME` uses them with no download.
    A recipe says how to run a hub model: family, pooling, dimensions (and Matryoshka ones), maximum
    length, per-task prefixes, remote code and licence. Use one with `codeseer embed --model HUB_ID`,
    or on a local mirror of the weights with `--model ./folder --recipe HUB_ID`. Join models with `+`
    (`--model codeseer-code-mini+./all-mpnet-base-v2`) for an ensemble that scores by their mean cosine.

    Examples:

      codeseer models

      codeseer models --json | jq '.offline[] | select(.default) | .name'
    """
    from codeseer.models.embedder import offline_models

    offline = offline_models()
    recipes = all_recipes()
    if as_json:
        payload = {"offline": offline, "recipes": [r.to_dict() for r in recipes]}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    local = Table(title="offline models (no download)", show_lines=False)
    for col in ("model", "use", "dim", "max len", "size"):
        local.add_column(col, overflow="fold", no_wrap=col == "model")
    for m in offline:
        name = f"[bold]{m['name']}[/] (default)" if m["default"] else m["name"]
        if not m["installed"]:
            local.add_row(name, f"[red]missing: reinstall codeseer[/] - {m['role']}", "-", "-", "-")
            continue
        size = f"{m['size_mb']:.0f} MB" if m["size_mb"] else "-"
        local.add_row(name, m["role"], str(m["dim"]), str(m["max_seq_length"] or "-"), size)
    out.print(local)
    table = Table(title="code embedding models (codeseer recipes)", show_lines=False)
    table.add_column("model", no_wrap=True)
    for col in ("family", "pooling", "dim", "matryoshka", "max len", "prompts", "remote code", "licence"):
        table.add_column(col, overflow="fold")
    for r in recipes:
        if not r.prompts:
            prompts = "none"
        elif r.asymmetric and len(r.supported_tasks) == len(TASKS) and len(r.prompts) == 1:
            prompts = "query only"
        else:
            prompts = ", ".join(r.supported_tasks)
        licence = f"[red]{r.license} (non-commercial)[/]" if r.non_commercial else r.license
        table.add_row(r.hub_id, r.family, r.pooling, str(r.native_dim),
                      "/".join(map(str, r.matryoshka_dims)) or "-", str(r.max_seq_length), prompts,
                      "yes" if r.trust_remote_code else "no", licence)
    out.print(table)


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
    backend: Annotated[str, typer.Option("--backend", help="torch or onnx (exported once, cached under ~/.cache/codeseer/onnx).")] = "torch",
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
    from codeseer.models.embedder import Embedder

    if texts == ["-"]:
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise CodeseerError("nothing to embed: give one or more texts")
    role = check_role(role)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        embedder = Embedder(model, recipe=recipe, task=task, pooling=pooling, dim=dim, backend=backend,
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
