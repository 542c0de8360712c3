"""Compact vectors: codec round trips by hand, and int8/binary indexes searched with rescoring."""

from __future__ import annotations

import numpy as np
import pytest

from codeseer.errors import CodeseerError
from codeseer.index.indexer import index_repository
from codeseer.index.quantize import Codec, dequantize_int8, pack_binary, quantize_int8, unpack_binary
from codeseer.index.store import IndexStore
from codeseer.search.searcher import Searcher

from conftest import write_files


def test_int8_codes_by_hand():
    lo, hi = np.array([-1.0, 0.0], np.float32), np.array([1.0, 2.0], np.float32)
    codes = quantize_int8(np.array([[-1.0, 2.0], [0.0, 1.0], [5.0, -3.0]], np.float32), lo, hi)
    # (x - lo) / (hi - lo) * 255 - 128: -1 -> -128, 2 -> 127, 0 -> rint(-0.5) = -0 ... clipped outside the range
    assert codes.tolist() == [[-128, 127], [0, 0], [127, -128]]
    back = dequantize_int8(codes, lo, hi)
    assert np.allclose(back[0], [-1.0, 2.0]) and np.allclose(back[1], [128 / 255 * 2 - 1, 128 / 255 * 2], atol=1e-6)


def test_binary_pack_by_hand():
    v = np.array([[0.5, -0.1, 0.0, 2.0, -3.0, 1.0, 1.0, -1.0, 0.2]], np.float32)
    bits = pack_binary(v)
    assert bits.tolist() == [[0b10010110, 0b10000000]]
    signs = unpack_binary(bits, 9)
    assert np.allclose(signs * 3, [[1, -1, -1, 1, -1, 1, 1, -1, 1]])
    assert np.isclose(np.linalg.norm(signs), 1.0)


@pytest.mark.parametrize("precision", ["float16", "int8", "binary"])
def test_codec_keeps_neighbours(precision):
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((500, 64)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    codec = Codec(precision, 64)
    codec.calibrate(docs)
    approx = codec.decode(codec.encode(docs))
    queries = docs[:50] + 0.3 * rng.standard_normal((50, 64)).astype(np.float32)
    exact_top = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
    approx_top = np.argsort(-(queries @ approx.T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact_top, approx_top)])
    # 64 random dimensions are the worst case for sign bits; chance level is 10/500 = 0.02
    assert recall >= {"float16": 0.99, "int8": 0.9, "binary": 0.35}[precision]


FILES = {f"pkg/m{i}.py": f"def function_{i}(value):\n    return value * {i} + {i * i}\n" for i in range(40)}


@pytest.mark.parametrize("precision", ["float16", "int8", "binary"])
def test_compact_index_search_matches_float32_top_hits(tmp_path, tiny_model_dir, precision):
    repo = write_files(tmp_path / "repo", FILES)
    model = str(tiny_model_dir)
    index_repository(repo, index_dir=tmp_path / "f32", model=model)
    index_repository(repo, index_dir=tmp_path / "compact", model=model, precision=precision)
    state = IndexStore(tmp_path / "compact").read_state()
    assert state.precision == precision and (state.calibration is not None) == (precision == "int8")
    exact = Searcher(IndexStore(tmp_path / "f32"))
    compact = Searcher(IndexStore(tmp_path / "compact"))
    overlaps = []
    for query in ["multiply a value", "function_7", "square of the index", "return value"]:
        a = [(h.path, h.start_line) for h in exact.search(query, k=5, mode="dense")]
        hits = compact.search(query, k=5, mode="dense")
        scores = [h.score for h in hits]
        assert len(hits) == 5 and scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
        overlaps.append(len(set(a) & {(h.path, h.start_line) for h in hits}) / 5)
        assert compact.search(query, k=3, mode="hybrid")
    # Sign bits of a tiny random model carry little (its vectors share one direction), so binary
    # quality is measured with the real model in bench/compact_storage.py instead.
    if precision != "binary":
        assert np.mean(overlaps) >= 0.9
    filtered = compact.search("function", k=50, mode="dense", path_glob="pkg/m1*.py")
    assert filtered and all(h.path.startswith("pkg/m1") for h in filtered)

    # incremental update keeps the calibration and re-uses stored vectors
    (repo / "pkg/m0.py").write_text("def renamed_zero(value):\n    return value\n")
    report = index_repository(repo, index_dir=tmp_path / "compact")
    assert report.embedded_chunks == 1
    assert IndexStore(tmp_path / "compact").read_state().calibration == state.calibration
    with pytest.raises(CodeseerError, match="re-create it"):
        index_repository(repo, index_dir=tmp_path / "compact", precision="float32")


def test_matryoshka_dim_is_recorded_and_used_for_queries(tmp_path, tiny_model_dir):
    import warnings

    repo = write_files(tmp_path / "repo", FILES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny model was not trained with Matryoshka loss
        index_repository(repo, model=str(tiny_model_dir), dim=16)
        store = IndexStore(repo / ".codeseer")
        assert store.read_state().dim == 16
        searcher = Searcher(store)
        hits = searcher.search("function_3", k=3, mode="dense")
        assert len(hits) == 3 and searcher.embedder.dim == 16
    with pytest.raises(CodeseerError, match="--dim 8"):
        index_repository(repo, dim=8)
