"""ONNX Runtime backend: export the transformer *with its pooling rule* once, then run it without torch.

The exported graph takes ``input_ids``, ``attention_mask`` (and ``token_type_ids`` for BERT-like
models) and returns one pooled vector per text, so tokenisation (:class:`TokenBatcher`) and
normalisation are the only steps outside the graph. Exports use ``torch.onnx.export`` (TorchScript
exporter, no optimum) with eager attention and dynamic batch/sequence axes, traced on a padded batch so
the mask path is part of the graph. Optional dynamic int8 quantisation uses
``onnxruntime.quantization.quantize_dynamic`` with per-channel weight scales. Exported models are cached under
``$CODESEER_CACHE/onnx/<hash>`` (see :mod:`codeseer.paths`; ``CODESEER_ONNX_CACHE`` moves it alone); the hash
covers the weights' files (name, size, mtime), the pooling rule, the family and the tool versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from codeseer.paths import cache_dir
from codeseer.errors import CodeseerError
from codeseer.models.backends import (
    FolderInfo,
    TokenBatcher,
    _quiet_hf,
    build_pooled_module,
    encode_prepared,
    encode_sorted,
    load_t5_projection,
    load_tokenizer,
    pick_max_length,
)
from codeseer.models.registry import PROJECTION, T5_PROJECTION

EXPORT_FORMAT = 1  # bump when the exported graph changes meaning
OPSET = 17
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8-per-channel.onnx"  # the name records the quantisation settings
META_FILE = "meta.json"


def cache_root() -> Path:
    if os.environ.get("CODESEER_ONNX_CACHE"):
        return Path(os.environ["CODESEER_ONNX_CACHE"]).expanduser()
    return cache_dir() / "onnx"


def _weights_fingerprint(folder: Path) -> list:
    rows = []
    for p in sorted(folder.iterdir()):
        if p.is_file():
            st = p.stat()
            rows.append([p.name, st.st_size, st.st_mtime_ns])
    return rows


def cache_key(folder: Path, *, pooling: str, family: str | None, trust_remote_code: bool) -> str:
    from importlib.metadata import version  # not `import torch`: a cache hit must not pay torch's start-up

    payload = {
        "format": EXPORT_FORMAT,
        "opset": OPSET,
        "folder": str(folder.resolve()),
        "files": _weights_fingerprint(folder),
        "pooling": pooling,
        "family": family,
        "trust_remote_code": trust_remote_code,
        "torch": version("torch"),
        "transformers": version("transformers"),
        "onnxruntime": version("onnxruntime"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _sample_batch(batcher: TokenBatcher) -> dict[str, np.ndarray]:
    # Two texts of different lengths: the trace must include padding, so the mask path is exported.
    return batcher(["def f(x): return x", "how do I read a csv file with pandas and keep the header row"])


def export_onnx(folder: Path, info: FolderInfo, batcher: TokenBatcher, *, pooling: str, trust_remote_code: bool,
                target: Path) -> dict:
    """Write ``target/model.onnx`` and ``target/meta.json``; returns the metadata."""
    _quiet_hf()
    import torch

    if info.family == T5_PROJECTION:
        model, proj = load_t5_projection(folder, info.config, with_projection=pooling == PROJECTION)
    else:
        from transformers import AutoModel

        try:
            model = AutoModel.from_pretrained(str(folder), trust_remote_code=trust_remote_code,
                                              dtype=torch.float32, attn_implementation="eager")
        except (TypeError, ValueError):  # remote code without attn_implementation support
            model = AutoModel.from_pretrained(str(folder), trust_remote_code=trust_remote_code, dtype=torch.float32)
        proj = None
    module = build_pooled_module(model.eval(), pooling, proj)
    sample = _sample_batch(batcher)
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in sample and module.accepts_token_type_ids:
        names.append("token_type_ids")
    args = tuple(torch.from_numpy(sample[n]) for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["embedding"] = {0: "batch"}
    target.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(target / FP32_FILE), dynamo=False, input_names=names,
                          output_names=["embedding"], dynamic_axes=axes, opset_version=OPSET,
                          do_constant_folding=True)
        dim = int(module(*args).shape[-1])
    meta = {"inputs": names, "dim": dim, "pooling": pooling, "family": info.family, "format": EXPORT_FORMAT}
    (target / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    return meta


def quantize_int8(src: Path, dst: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint on the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Per-channel weight scales: on all-MiniLM-L6-v2 per-tensor int8 gave a mean cosine of 0.92 to
            # fp32 over code chunks, per-channel 0.99 (bench/embed_speed.py prints the column).
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)


def prepare_onnx(folder: Path, info: FolderInfo, batcher: TokenBatcher, *, pooling: str, trust_remote_code: bool,
                 quantize: bool, cache_dir: Path | None = None) -> tuple[Path, dict]:
    """Export (once) and return the path of the ONNX file to run and its metadata."""
    root = Path(cache_dir) if cache_dir else cache_root()
    key = cache_key(folder, pooling=pooling, family=info.family, trust_remote_code=trust_remote_code)
    final = root / key
    if not (final / META_FILE).exists():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            export_onnx(folder, info, batcher, pooling=pooling, trust_remote_code=trust_remote_code, target=tmp)
            try:
                tmp.rename(final)  # atomic: a killed export never leaves a half-written cache entry
            except OSError:
                if not (final / META_FILE).exists():
                    raise
        except CodeseerError:
            raise
        except Exception as exc:
            raise CodeseerError(f"ONNX export of {folder} failed: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    meta = json.loads((final / META_FILE).read_text(encoding="utf-8"))
    path = final / FP32_FILE
    if quantize:
        q = final / INT8_FILE
        if not q.exists():
            tmp_q = final / f".{os.getpid()}.{INT8_FILE}"
            quantize_int8(path, tmp_q)
            os.replace(tmp_q, q)
        path = q
    return path, meta


class OnnxEncoder:
    """Same tokenisation as :class:`TransformerEncoder`, pooled vectors from an ONNX Runtime session."""

    backend = "onnx"

    def __init__(
        self,
        folder: Path,
        info: FolderInfo,
        *,
        pooling: str,
        max_seq_length: int | None = None,
        trust_remote_code: bool = False,
        append_eos: bool = False,
        padding_side: str | None = None,
        batch_size: int = 32,
        quantize: bool = False,
        cache_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        try:
            import onnx  # noqa: F401  (torch.onnx.export writes through it)
            import onnxruntime as ort
        except ImportError as exc:
            raise CodeseerError("the ONNX backend needs onnx and onnxruntime: pip install onnx onnxruntime") from exc
        self.folder = folder
        self.pooling = pooling
        # Dynamic int8 scales each activation tensor by its own range, so in a batch a text's vector
        # would depend on its batch-mates (max |diff| 0.03 measured). One text per call keeps vectors a
        # function of the text alone (crash-resume, Ray shards and caches then agree exactly), is
        # still 1.4x the fp32 batched speed, and wastes nothing on padding.
        self.batch_size = 1 if quantize else batch_size
        self.quantized = quantize
        self.tokenizer = load_tokenizer(folder, trust_remote_code)
        self.max_length = self.max_seq_length = pick_max_length(max_seq_length, None, info, self.tokenizer)
        self.batcher = TokenBatcher(self.tokenizer, self.max_length, append_eos=append_eos, padding_side=padding_side)
        self.path, meta = prepare_onnx(folder, info, self.batcher, pooling=pooling,
                                       trust_remote_code=trust_remote_code, quantize=quantize, cache_dir=cache_dir)
        self.inputs = list(meta["inputs"])
        self.dim = int(meta["dim"])
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def _forward(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {n: batch[n] if n in batch else np.zeros_like(batch["input_ids"]) for n in self.inputs}
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return encode_sorted(texts, self.batcher, self._forward, self.batch_size, self.dim)

    def tokenize(self, texts: Sequence[str]) -> dict[str, list[list[int]]]:
        return self.batcher.prepare(list(texts)) if texts else {"input_ids": []}

    def encode_tokens(self, enc: dict[str, list[list[int]]]) -> np.ndarray:
        return encode_prepared(enc, self.batcher, self._forward, self.batch_size, self.dim)
