"""The light runtime: the bundled model's shipped ONNX graphs on tokenizers + onnxruntime, no torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from codeseer.models.backends import load_tokenizer
from codeseer.models.embedder import BUNDLED_DIR, MINI_MODEL, Embedder
from codeseer.models.pooling import l2_normalize
from codeseer.models.runtime import RustTokenizer, ShippedOnnxEncoder, shipped_graphs, weights_digest

FOLDER = BUNDLED_DIR / MINI_MODEL
TEXTS = [
    "def f(x): return x",
    "how do I read a csv file with pandas and keep the header row",
    "def long():\n" + "    total = total + 1  # keep counting\n" * 200,  # past the 128-token limit
    "émoji 🎉, naïve café, 中文, tab\tand\nnewline",
    "",
    "x",
    "public double total(List<Item> items) { return items.stream().mapToDouble(Item::price).sum(); }",
]


def test_shipped_graphs_match_the_bundled_weights():
    meta = shipped_graphs(FOLDER)
    assert meta is not None, "run scripts/export_onnx.py: the bundled model has no ONNX graphs"
    assert meta["weights_sha256"] == weights_digest(FOLDER), "stale graphs: run scripts/export_onnx.py again"
    assert meta["dim"] == 384 and meta["pooling"] == "mean" and meta["max_seq_length"] == 128
    for graph in meta["graphs"].values():
        assert (FOLDER / "onnx" / graph).is_file()


def test_rust_tokenizer_gives_the_hugging_face_ids():
    hf, rust = load_tokenizer(FOLDER), RustTokenizer(FOLDER)
    for limit in (128, 16):
        a = hf(TEXTS, truncation=True, max_length=limit)
        b = rust(TEXTS, truncation=True, max_length=limit)
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            assert [list(x) for x in a[key]] == b[key], (limit, key)
    padded_hf = hf.pad(hf(TEXTS, truncation=True, max_length=128), padding=True, return_tensors="np")
    padded_rust = rust.pad(rust(TEXTS, truncation=True, max_length=128))
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert np.array_equal(np.asarray(padded_hf[key]), padded_rust[key])
    # counting tokens (context packs) neither truncates nor adds special tokens
    from codeseer.apps.context import token_counter

    count_hf, count_rust = token_counter(hf), token_counter(rust)
    assert [count_rust(t) for t in TEXTS] == [count_hf(t) for t in TEXTS]
    assert count_rust(TEXTS[2]) > 128


def test_fp32_graph_gives_pytorch_vectors():
    torch_vectors = Embedder(MINI_MODEL, backend="torch").encode(TEXTS, "document")
    onnx = ShippedOnnxEncoder(FOLDER, shipped_graphs(FOLDER))
    vectors = l2_normalize(onnx.encode(TEXTS))
    assert float((vectors * torch_vectors).sum(axis=1).min()) >= 0.9999
    assert float(np.abs(vectors - torch_vectors).max()) < 1e-5


def test_int8_vectors_do_not_depend_on_batch_mates_or_threads():
    meta = shipped_graphs(FOLDER)
    parallel = ShippedOnnxEncoder(FOLDER, meta, quantize=True, threads=2)
    serial = ShippedOnnxEncoder(FOLDER, meta, quantize=True, threads=1)
    together = parallel.encode(TEXTS)
    alone = np.stack([serial.encode([t])[0] for t in TEXTS])
    assert float(np.abs(together - alone).max()) <= 1e-6
    assert float(np.abs(serial.encode(TEXTS) - together).max()) <= 1e-6
    fp32 = l2_normalize(ShippedOnnxEncoder(FOLDER, meta).encode(TEXTS))
    assert float((l2_normalize(together) * fp32).sum(axis=1).min()) > 0.95
    parallel.close()


def test_the_default_model_runs_on_the_shipped_graphs():
    default = Embedder(MINI_MODEL)
    assert (default.backend, default.quantized, default.pooling) == ("onnx", False, "mean")
    assert isinstance(default._encoder, ShippedOnnxEncoder)
    assert Embedder(MINI_MODEL, backend="torch").backend == "torch"
    indexing = Embedder(MINI_MODEL, backend="auto")
    assert indexing.backend == "onnx" and isinstance(indexing._encoder, ShippedOnnxEncoder)
    # another pooling than the graph's: not the shipped graph
    assert not isinstance(Embedder(MINI_MODEL, backend="onnx", pooling="cls")._encoder, ShippedOnnxEncoder)


NO_TORCH = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    from codeseer.index.indexer import index_repository
    from codeseer.index.store import IndexStore
    from codeseer.search.searcher import Searcher
    from codeseer.apps.locate import locate
    from codeseer.apps.similar import similar
    from codeseer.apps.context import context_pack
    repo = Path(sys.argv[1])
    report = index_repository(repo)
    searcher = Searcher(IndexStore(repo / ".codeseer"))
    hits = searcher.search("retry an operation with backoff", k=3)
    files = locate(searcher, "retry never sleeps between attempts", k=2).files
    near = similar(searcher, path="net/retry.py", line=5, k=2).hits
    pack = context_pack(searcher, "retry with backoff", budget=200)
    heavy = [m for m in ("torch", "transformers", "sentence_transformers", "model2vec") if m in sys.modules]
    print(json.dumps({"heavy": heavy, "backend": searcher.embedder.backend, "chunks": report.chunks,
                      "top": hits[0].path, "file": files[0].path, "near": len(near), "tokens": pack.tokens}))
''')


def test_index_and_every_query_path_run_without_torch(tmp_path):
    repo = tmp_path / "repo"
    (repo / "net").mkdir(parents=True)
    (repo / "net" / "retry.py").write_text(
        "import time\n\n\ndef retry_with_backoff(operation, attempts=5):\n    for n in range(attempts):\n"
        "        try:\n            return operation()\n        except OSError:\n            time.sleep(2 ** n)\n")
    (repo / "util.py").write_text("def slugify(text):\n    return '-'.join(text.lower().split())\n")
    done = subprocess.run([sys.executable, "-c", NO_TORCH, str(repo)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], result
    assert result["backend"] == "onnx" and result["top"] == "net/retry.py" and result["file"] == "net/retry.py"
    assert result["near"] >= 1 and 0 < result["tokens"] <= 200


HEAVY = ("torch", "transformers", "sentence_transformers", "lancedb", "onnxruntime", "pyarrow")
START_UP = textwrap.dedent('''
    import json, sys
    from codeseer.cli import main
    sys.argv = ["codeseer", *sys.argv[1:]]
    try:
        main()
    except SystemExit:
        pass
    print(json.dumps([m for m in %r if m in sys.modules]))
''' % (HEAVY,))


@pytest.mark.parametrize("args", [["--help"], ["search", "--help"], ["search"], ["locate", "x", "--include", "tset"]])
def test_cli_start_up_and_argument_errors_import_nothing_heavy(tmp_path, args):
    done = subprocess.run([sys.executable, "-c", START_UP, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [], done.stderr
