"""Indexing throughput features: the machine-wide vector cache, bf16 / auto backends, length-sorted slabs."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from codeseer.index.indexer import index_repository
from codeseer.index.store import IndexStore
from codeseer.index.vector_cache import VectorCache
from codeseer.models import embedder as embedder_module
from codeseer.models.embedder import Embedder
from conftest import write_files

REPO = {
    "src/retry.py": (
        "def retry(operation, attempts=3):\n"
        "    for n in range(attempts):\n"
        "        try:\n            return operation()\n"
        "        except Exception:\n            if n == attempts - 1:\n                raise\n"
    ),
    "src/cfg.py": "import json\n\n\ndef load_config(path):\n    with open(path) as fh:\n        return json.load(fh)\n",
    "src/shapes.py": (
        "class Circle:\n    def __init__(self, r):\n        self.r = r\n\n"
        "    def area(self):\n        return 3.14159 * self.r ** 2\n\n"
        "    def perimeter(self):\n        return 2 * 3.14159 * self.r\n"
    ),
    "lib/util.go": "package util\n\nfunc Add(a, b int) int {\n\treturn a + b\n}\n",
}


def _vectors(index_dir):
    store = IndexStore(index_dir)
    chunks, _ = store.snapshot(store.read_state())
    table = chunks.to_arrow()
    return dict(zip(table["content_hash"].to_pylist(), np.stack(table["vector"].to_numpy(zero_copy_only=False))))


def test_vector_cache_round_trip_and_isolation(tmp_path):
    cache = VectorCache("model-a", 4, tmp_path / "v.sqlite")
    vectors = np.arange(8, dtype=np.float32).reshape(2, 4)
    cache.put(["h1", "h2"], vectors)
    got = cache.get(["h1", "h2", "h3"])
    assert set(got) == {"h1", "h2"} and np.array_equal(got["h2"], vectors[1])
    assert VectorCache("model-b", 4, tmp_path / "v.sqlite").get(["h1"]) == {}  # another fingerprint
    assert VectorCache("model-a", 8, tmp_path / "v.sqlite").get(["h1"]) == {}  # wrong width is ignored


def test_vector_cache_failure_is_not_fatal(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = VectorCache("m", 4, blocker / "sub" / "v.sqlite")  # parent is a file: cannot be created
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache.put(["h"], np.zeros((1, 4), np.float32))
        assert cache.get(["h"]) == {}
    assert any("disabled" in str(w.message) for w in caught)


def test_second_clone_reuses_the_first_ones_vectors(tmp_path, tiny_model_dir):
    first = write_files(tmp_path / "a" / "repo", REPO)
    second = tmp_path / "b" / "repo"
    shutil.copytree(first, second)
    (second / "src" / "new.py").write_text("def brand_new(x):\n    return x * 42\n")
    a = index_repository(first, index_dir=tmp_path / "ia", model=str(tiny_model_dir))
    b = index_repository(second, index_dir=tmp_path / "ib", model=str(tiny_model_dir))
    assert a.embedded_chunks == a.chunks and a.cached_chunks == 0
    assert b.chunks == a.chunks + 1
    assert b.embedded_chunks == 1 and b.cached_chunks == a.chunks  # only the new function met the model
    va, vb = _vectors(tmp_path / "ia"), _vectors(tmp_path / "ib")
    for digest, vector in va.items():
        assert np.array_equal(vector, vb[digest])


def test_cache_off_and_other_dim_do_not_share(tmp_path, tiny_model_dir, monkeypatch):
    repo = write_files(tmp_path / "repo", REPO)
    index_repository(repo, index_dir=tmp_path / "i1", model=str(tiny_model_dir))
    truncated = index_repository(repo, index_dir=tmp_path / "i2", model=str(tiny_model_dir), dim=16)
    assert truncated.cached_chunks == 0 and truncated.embedded_chunks == truncated.chunks
    monkeypatch.setenv("CODESEER_VECTOR_CACHE", "off")
    off = index_repository(repo, index_dir=tmp_path / "i3", model=str(tiny_model_dir))
    assert off.cached_chunks == 0 and off.embedded_chunks == off.chunks


def test_fingerprint_tracks_what_changes_vectors(tiny_model_dir):
    base = Embedder(str(tiny_model_dir))
    assert base.fingerprint() == Embedder(str(tiny_model_dir)).fingerprint()
    assert base.fingerprint() != Embedder(str(tiny_model_dir), dim=16).fingerprint()
    assert base.fingerprint() != Embedder(str(tiny_model_dir), bf16=True).fingerprint()
    assert base.fingerprint() != Embedder(str(tiny_model_dir), document_prefix="passage: ").fingerprint()


def test_bf16_stays_close_to_fp32(tiny_model_dir):
    texts = ["def add(a, b):\n    return a + b", "class Stack:\n    def push(self, x):\n        self.items.append(x)",
             "open a file and read json"] * 3
    fp32 = Embedder(str(tiny_model_dir)).encode_documents(texts)
    bf16 = Embedder(str(tiny_model_dir), bf16=True).encode_documents(texts)
    assert bf16.dtype == np.float32
    cosine = np.sum(fp32 * bf16, axis=1)
    assert cosine.min() > 0.99
    assert not np.array_equal(fp32, bf16)  # bf16 really ran


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"avx512f", "avx512_vnni", "avx512_bf16"}, ("onnx", True, False)),
        ({"avx2", "avx_vnni"}, ("onnx", True, False)),
        ({"avx512f", "avx512_bf16"}, ("torch", False, True)),
        ({"avx2"}, ("onnx", False, False)),
    ],
)
def test_auto_backend_follows_the_cpu(monkeypatch, flags, expected):
    monkeypatch.setattr(embedder_module, "cpu_flags", lambda: frozenset(flags))
    assert embedder_module.auto_backend() == expected


def test_auto_follows_explicit_numerics(tiny_model_dir):
    from codeseer.errors import CodeseerError

    with pytest.raises(CodeseerError, match="not both"):
        Embedder(str(tiny_model_dir), backend="auto", bf16=True, quantize=True)
    assert Embedder(str(tiny_model_dir), backend="auto", bf16=True).backend == "torch"
    with pytest.raises(CodeseerError, match="torch backend only"):
        Embedder(str(tiny_model_dir), backend="onnx", bf16=True)


def test_texts_reach_the_model_longest_first(tmp_path, tiny_model_dir):
    repo = write_files(tmp_path / "repo", REPO)
    real = Embedder(str(tiny_model_dir))
    seen: list[str] = []

    class Spy:
        dim = real.dim
        name = real.name

        def fingerprint(self):
            return None  # no machine-wide vector cache: every new text reaches the model

        def close(self) -> dict:
            return {}

        def encode_documents(self, texts, **kwargs):
            seen.extend(texts)
            return real.encode_documents(texts, **kwargs)

    report = index_repository(repo, index_dir=tmp_path / "idx", embedder_factory=lambda m: Spy())
    assert len(seen) == report.embedded_chunks > 3
    assert [len(t) for t in seen] == sorted((len(t) for t in seen), reverse=True)
