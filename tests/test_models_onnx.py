"""ONNX backend: exported once per model (cached), same vectors as PyTorch (cosine >= 0.99 per vector;
fp32 is in fact within 1e-5), int8 quantisation close enough to rank the same way."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import tiny_models as testing  # noqa: E402
from codeseer.models.embedder import Embedder  # noqa: E402

TEXTS = [
    "def add(a, b):\n    return a + b",
    "x",
    "how do I read a csv file in python and keep the header row?",
    "SELECT name FROM users WHERE id = 4;",
    "class Stack:\n    def push(self, item):\n        self.items.append(item)",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny-onnx")
    return {
        "qwen_left_eos": testing.build_qwen2(base / "qwen-left", padding_side="left", eos_in_template=True),
        "qwen_right": testing.build_qwen2(base / "qwen-right", padding_side="right"),
        "bert_st": testing.build_bert(base / "bert-st", st_pooling="mean"),
        "t5": testing.build_t5_projection(base / "t5"),
    }


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.mark.parametrize("name,pooling", [("qwen_left_eos", None), ("qwen_right", None), ("bert_st", None),
                                          ("bert_st", "cls"), ("t5", None)])
def test_onnx_matches_torch(tiny, cache, name, pooling):
    folder = str(tiny[name])
    torch_vecs = Embedder(folder, pooling=pooling).encode_documents(TEXTS)
    onnx = Embedder(folder, pooling=pooling, backend="onnx", onnx_cache_dir=cache)
    assert onnx.backend == "onnx"
    got = onnx.encode_documents(TEXTS)
    assert ((got * torch_vecs).sum(axis=1) >= 0.99).all()
    assert np.abs(got - torch_vecs).max() < 1e-5
    assert np.abs(onnx.encode_documents(TEXTS[:1]) - torch_vecs[:1]).max() < 1e-5  # a batch without padding
    int8 = Embedder(folder, pooling=pooling, backend="onnx", quantize=True, onnx_cache_dir=cache)
    q = int8.encode_documents(TEXTS)
    assert ((q * torch_vecs).sum(axis=1) >= 0.99).all()
    assert "int8" in int8._encoder.path.name and int8._encoder.path.parent == onnx._encoder.path.parent


def test_export_is_cached_and_keyed_by_pooling(tiny, cache):
    folder = str(tiny["qwen_right"])
    first = Embedder(folder, backend="onnx", onnx_cache_dir=cache)._encoder.path
    mtime = first.stat().st_mtime_ns
    with pytest.warns(UserWarning, match="Matryoshka"):
        again = Embedder(folder, backend="onnx", onnx_cache_dir=cache, dim=16)._encoder.path
    assert again == first and first.stat().st_mtime_ns == mtime  # reused, not re-exported
    other = Embedder(folder, backend="onnx", pooling="mean", onnx_cache_dir=cache)._encoder.path
    assert other.parent != first.parent
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no half-written exports left
