"""Evaluation results as JSON records: build, save, load, compare, render as tables and plot.

One record is one (dataset, model, mode) run::

    {"dataset": "cosqa-dev", "model": "sentence-transformers/all-MiniLM-L6-v2", "mode": "dense",
     "task": "nl2code", "dim": 384, "metrics": {"ndcg@10": 0.603, ...}, "encode_seconds": 41.2,
     "queries_per_second": 310.5, "n_queries": 500, "n_docs": 6267,
     "versions": {"codeseer": "0.1.0", "torch": "2.13.0+cpu", ...}, "timestamp": "2025-..."}

Records written by ``codeseer eval`` also carry ``"per_query": {"query_ids": [...], "ndcg@10": [...],
"mrr@10": [...]}`` so that two runs can be tested for significance later (``baseline_table``).
Metrics are fractions in [0, 1] as :func:`codeseer.eval.metrics.evaluate` returns them; tables
show them x100. ``model`` is None for runs that use no model (BM25), ``dim`` is None there too.
Everything here is a pure function of its arguments except ``save_records``/``load_records``
(files) and ``plot_metric`` (writes the PNG); nothing imports torch.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.table import Table

__all__ = [
    "BEIR_COLUMNS",
    "REPO_COLUMNS",
    "Comparison",
    "baseline_table",
    "build_record",
    "compare_records",
    "comparison_table",
    "load_records",
    "matplotlib_available",
    "plot_metric",
    "results_table",
    "save_records",
    "versions",
]

#: (metric key, column title) shown by ``codeseer eval``.
BEIR_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ndcg@10", "nDCG@10"),
    ("map@10", "MAP@10"),
    ("recall@10", "Recall@10"),
    ("recall@100", "Recall@100"),
    ("mrr@10", "MRR@10"),
)
#: (metric key, column title) shown by ``codeseer eval-repo`` (file level).
REPO_COLUMNS: tuple[tuple[str, str], ...] = (
    ("recall@1", "Recall@1"),
    ("recall@5", "Recall@5"),
    ("recall@10", "Recall@10"),
    ("mrr@10", "MRR@10"),
)
REQUIRED_KEYS = ("dataset", "model", "mode", "metrics")
PACKAGES = ("codeseer", "torch", "sentence_transformers", "lancedb")
PLOT_INSTALL_HINT = "matplotlib is not installed: pip install matplotlib"

Key = tuple[str, str | None, str]  # (dataset, model, mode)


def versions(packages: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed versions, read from package metadata (importing torch just for this would be slow)."""
    found: dict[str, str | None] = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None  # JSON has no inf/NaN


def build_record(
    *,
    dataset: str,
    model: str | None,
    mode: str,
    task: str | None,
    dim: int | None,
    metrics: Mapping[str, float],
    encode_seconds: float | None,
    queries_per_second: float | None,
    n_queries: int,
    n_docs: int,
    extra: Mapping[str, Any] | None = None,
    package_versions: Mapping[str, str | None] | None = None,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """One JSON-ready result record (field order as documented in the module docstring)."""
    record: dict[str, Any] = {
        "dataset": dataset,
        "model": model,
        "mode": mode,
        "task": task,
        "dim": dim,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "encode_seconds": None if encode_seconds is None else round(float(encode_seconds), 3),
        "queries_per_second": _finite(None if queries_per_second is None else round(float(queries_per_second), 2)),
        "n_queries": int(n_queries),
        "n_docs": int(n_docs),
    }
    if extra:
        record.update(extra)
    record["versions"] = dict(package_versions) if package_versions is not None else versions()
    record["timestamp"] = timestamp or datetime.now(timezone.utc).isoformat(timespec="seconds")
    return record


def save_records(path: str | Path, records: Sequence[Mapping[str, Any]]) -> None:
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(records), indent=2) + "\n", encoding="utf-8")


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Records saved by ``--json``; ``ValueError``/``FileNotFoundError`` name the file on bad input."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: results file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    if isinstance(data, dict):  # a single record
        data = [data]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of result records")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise ValueError(f"{path}: record {i} is not a JSON object")
        missing = [k for k in REQUIRED_KEYS if k not in rec]
        if missing:
            raise ValueError(f"{path}: record {i} lacks {', '.join(missing)}; was it written by codeseer eval --json?")
        if not isinstance(rec["metrics"], dict):
            raise ValueError(f"{path}: record {i}: 'metrics' must be an object")
    return data


def record_key(record: Mapping[str, Any]) -> Key:
    return (str(record["dataset"]), record.get("model"), str(record["mode"]))


def short_model(model: str | None) -> str:
    """Table label: the last path part of a model folder or hub id (of each member of an ensemble
    ``a+b``); '-' for runs without a model."""
    if not model:
        return "-"
    from codeseer.models.ensemble import SEPARATOR, split_members

    members = split_members(model)
    if members:
        return SEPARATOR.join(short_model(m) for m in members)
    return Path(model).name if model.startswith(("/", ".", "~")) else model.split("/")[-1]


def _pct(value: Any) -> str:
    if value is None:
        return "-"
    return f"{100 * float(value):.2f}"


def _seconds(record: Mapping[str, Any]) -> str:
    if record.get("doc_vectors_cached"):
        return "cached"
    value = record.get("encode_seconds")
    return "-" if value is None else f"{float(value):.1f}"


def _qps(record: Mapping[str, Any]) -> str:
    value = record.get("queries_per_second")
    return "-" if value is None else f"{float(value):,.1f}"


def results_table(
    records: Sequence[Mapping[str, Any]],
    columns: Sequence[tuple[str, str]] = BEIR_COLUMNS,
    *,
    title: str | None = None,
    encode: bool = True,
    throughput: bool = True,
) -> Table:
    """Rich table: dataset, model, mode, the metric columns (x100), encode seconds, queries/s."""
    table = Table(title=title, title_justify="left")
    table.add_column("dataset")
    table.add_column("model")
    table.add_column("mode")
    for _, name in columns:
        table.add_column(name, justify="right")
    if encode:
        table.add_column("encode s", justify="right")
    if throughput:
        table.add_column("queries/s", justify="right")
    previous = None
    for rec in records:
        if previous is not None and rec["dataset"] != previous:
            table.add_section()
        previous = rec["dataset"]
        cells = [str(rec["dataset"]), short_model(rec.get("model")), str(rec["mode"])]
        cells += [_pct(rec["metrics"].get(key)) for key, _ in columns]
        if encode:
            cells.append(_seconds(rec))
        if throughput:
            cells.append(_qps(rec))
        table.add_row(*cells)
    return table


# ----------------------------------------------------------------------------- comparison


@dataclass
class Comparison:
    """``rows``: (key, metric, a, b, b - a) for every key in both files, in A's order."""

    rows: list[tuple[Key, str, float | None, float | None, float | None]] = field(default_factory=list)
    only_a: list[Key] = field(default_factory=list)
    only_b: list[Key] = field(default_factory=list)
    duplicates: list[Key] = field(default_factory=list)  # keys seen twice in one file: the last one wins
    tests: dict[tuple[Key, str], Any] = field(default_factory=dict)  # paired test where both kept per-query scores


def _by_key(records: Sequence[Mapping[str, Any]], duplicates: list[Key]) -> dict[Key, Mapping[str, Any]]:
    out: dict[Key, Mapping[str, Any]] = {}
    for rec in records:
        key = record_key(rec)
        if key in out and key not in duplicates:
            duplicates.append(key)
        out[key] = rec
    return out


def _across_models(a_left: Mapping[Key, Mapping], b_left: Mapping[Key, Mapping]) -> list[tuple[Key, Mapping, Mapping]]:
    """Runs of one dataset and mode that only differ in their model (old model in A, new one in B): paired
    when each file has exactly one such run left, under the key (dataset, "A-model → B-model", mode)."""
    def by_run(left: Mapping[Key, Mapping]) -> dict[tuple[str, str], list[Mapping]]:
        runs: dict[tuple[str, str], list[Mapping]] = {}
        for (dataset, model, mode), rec in left.items():
            if model is not None:
                runs.setdefault((dataset, mode), []).append(rec)
        return runs

    a_runs, b_runs = by_run(a_left), by_run(b_left)
    out = []
    for (dataset, mode), recs in a_runs.items():
        other = b_runs.get((dataset, mode), [])
        if len(recs) == 1 and len(other) == 1:
            label = f"{short_model(recs[0]['model'])} → {short_model(other[0]['model'])}"
            out.append(((dataset, label, mode), recs[0], other[0]))
    return out


def compare_records(
    a: Sequence[Mapping[str, Any]],
    b: Sequence[Mapping[str, Any]],
    metrics: Sequence[str] | None = None,
) -> Comparison:
    """Pair records of A and B by (dataset, model, mode), or, for runs left over that differ only in their
    model, by (dataset, mode): the old model against the new one. Metric values and B - A for each pair.

    Where both records kept per-query scores of a metric, ``tests`` holds the paired test of B − A.

    ``metrics`` None: the columns ``codeseer eval`` shows (``eval-repo``'s for file-level records)
    that both records have, else every metric both have.
    """
    from codeseer.eval.significance import paired_from_records

    result = Comparison()
    a_map = _by_key(a, result.duplicates)
    b_map = _by_key(b, result.duplicates)
    pairs = [(key, rec, b_map[key]) for key, rec in a_map.items() if key in b_map]
    pairs += _across_models({k: r for k, r in a_map.items() if k not in b_map},
                            {k: r for k, r in b_map.items() if k not in a_map})
    paired_a = {record_key(rec_a) for _, rec_a, _ in pairs}
    paired_b = {record_key(rec_b) for _, _, rec_b in pairs}
    result.only_a = [k for k in a_map if k not in paired_a]
    result.only_b = [k for k in b_map if k not in paired_b]
    for key, rec_a, rec_b in pairs:
        ma, mb = rec_a["metrics"], rec_b["metrics"]
        names = metrics
        if names is None:
            columns = REPO_COLUMNS if rec_a.get("level") == "file" else BEIR_COLUMNS
            names = [m for m, _ in columns if m in ma and m in mb] or sorted(m for m in ma if m in mb)
        for name in names:
            va, vb = ma.get(name), mb.get(name)
            diff = None if va is None or vb is None else float(vb) - float(va)
            result.rows.append((key, name, va, vb, diff))
            test = paired_from_records(rec_a, rec_b, name)
            if test is not None:
                result.tests[(key, name)] = test
    return result


def _diff_cell(diff: float | None) -> str:
    if diff is None:
        return "-"
    points = 100 * diff
    if abs(points) < 0.005:
        return "[dim]+0.00[/]"
    color = "green" if points > 0 else "red"
    return f"[{color}]{points:+.2f}[/]"


def comparison_table(comparison: Comparison, a_label: str = "A", b_label: str = "B") -> Table:
    """One row per (dataset, model, mode, metric): A, B and B - A in points, colored by sign."""
    table = Table(title=f"B − A   (A = {a_label}, B = {b_label})", title_justify="left")
    for name in ("dataset", "model", "mode", "metric"):
        table.add_column(name)
    table.add_column("A", justify="right")
    table.add_column("B", justify="right")
    table.add_column("B − A", justify="right")
    table.add_column("p", justify="right")  # paired randomization test, where both files kept per-query scores
    previous = None
    for key, metric, va, vb, diff in comparison.rows:
        if previous is not None and key != previous:
            table.add_section()
        first = key != previous
        previous = key
        dataset, model, mode = key
        labels = [dataset, short_model(model), mode] if first else ["", "", ""]
        test = comparison.tests.get((key, metric))
        table.add_row(*labels, metric, _pct(va), _pct(vb), _diff_cell(diff), _p_cell(test))
    return table


# ----------------------------------------------------------------------------- significance

SIGNIFICANCE_METRICS: tuple[tuple[str, str], ...] = (("ndcg@10", "nDCG@10"), ("mrr@10", "MRR@10"))
REPO_SIGNIFICANCE_METRICS: tuple[tuple[str, str], ...] = (("mrr@10", "MRR@10"), ("recall@10", "Recall@10"))


def _p_cell(test) -> str:
    if test is None:
        return "-"
    return f"{test.p_value:.3f}" if test.p_value >= 0.001 else "<0.001"


def _test_cells(test) -> list[str]:
    if test is None:
        return ["-", "-", "-"]
    points = 100 * test.mean_diff
    color = "dim" if not test.significant() else ("green" if points > 0 else "red")
    return [f"[{color}]{points:+.2f}[/]", f"{100 * test.ci_low:+.2f} … {100 * test.ci_high:+.2f}", _p_cell(test)]


def baseline_table(
    records: Sequence[Mapping[str, Any]],
    is_baseline: Callable[[Mapping[str, Any]], bool],
    metrics: Sequence[tuple[str, str]] = SIGNIFICANCE_METRICS,
) -> Table:
    """Every run against the baseline run of its dataset: B − baseline, 95% CI and paired p-value.

    ``is_baseline`` picks the baseline record of each dataset. Differences with p < 0.05 are
    coloured; grey ones are within noise. Records without per-query scores show "-".
    """
    from codeseer.eval.significance import paired_from_records

    table = Table(title="against the baseline: difference in points, 95% bootstrap CI, paired randomization p",
                  title_justify="left")
    for name in ("dataset", "model", "mode"):
        table.add_column(name)
    for _, title in metrics:
        table.add_column(f"Δ {title}", justify="right")
        table.add_column("95% CI", justify="right")
        table.add_column("p", justify="right")
    by_dataset: dict[str, list[Mapping[str, Any]]] = {}
    for rec in records:
        by_dataset.setdefault(str(rec["dataset"]), []).append(rec)
    first = True
    for dataset, runs in by_dataset.items():
        base = next((r for r in runs if is_baseline(r)), None)
        if base is None:
            continue
        if not first:
            table.add_section()
        first = False
        table.add_row(dataset, short_model(base.get("model")), f"{base['mode']} (baseline)",
                      *(["", "", ""] * len(metrics)))
        for rec in runs:
            if rec is base:
                continue
            cells = [dataset, short_model(rec.get("model")), str(rec["mode"])]
            for metric, _ in metrics:
                cells += _test_cells(paired_from_records(base, rec, metric))
            table.add_row(*cells)
    return table


# ----------------------------------------------------------------------------- plot


def matplotlib_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def plot_metric(records: Sequence[Mapping[str, Any]], path: str | Path, metric: str = "ndcg@10") -> None:
    """Grouped bar chart: one group per dataset, one bar per (model, mode) run. Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(PLOT_INSTALL_HINT) from e

    datasets = list(dict.fromkeys(str(r["dataset"]) for r in records))
    runs = list(dict.fromkeys(
        (r["mode"] if not r.get("model") else f"{short_model(r.get('model'))} {r['mode']}") for r in records
    ))
    values = {d: {} for d in datasets}
    for r in records:
        run = r["mode"] if not r.get("model") else f"{short_model(r.get('model'))} {r['mode']}"
        value = r["metrics"].get(metric)
        values[str(r["dataset"])][run] = 100 * float(value) if value is not None else 0.0
    width = 0.8 / max(1, len(runs))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(datasets) * max(1, len(runs)) * 0.6 + 2), 4.5))
    for i, run in enumerate(runs):
        xs = [j + (i - (len(runs) - 1) / 2) * width for j in range(len(datasets))]
        ys = [values[d].get(run, 0.0) for d in datasets]
        bars = ax.bar(xs, ys, width, label=run)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(datasets)), datasets)
    ax.set_ylabel(metric)
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8)
    ax.set_title(f"{metric} per dataset and run")
    fig.tight_layout()
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
