"""The light runtime: the bundled transformer model on ``tokenizers`` + ONNX Runtime + NumPy, no torch.

Search, locate, similar, context, index and the servers run the default model through here, so
they neither import nor need PyTorch: the graphs ship inside the package (``bundled/<model>/onnx/``,
made by ``scripts/export_onnx.py``) and the tokenizer is the model's own ``tokenizer.json`` read by
the ``tokenizers`` library, the same Rust code the Hugging Face fast tokenizers run (ids equal,
``tests/test_models_runtime.py``).

Two graphs: ``model.onnx`` computes in float32 (queries, and documents where the CPU has no VNNI)
and gives PyTorch's vectors (cosine >= 0.9999); ``model.int8.onnx`` is dynamically quantised.
Dynamic int8 scales activations by the range of the whole batch, so an int8 vector is computed one
text per call, which keeps it a function of its text alone; the texts of a slab then run on every
core at once (one single-threaded call per core, ONNX Runtime releases the GIL).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from codeseer.errors import CodeseerError

__all__ = ["GRAPH_DIR", "RustTokenizer", "ShippedOnnxEncoder", "shipped_graphs", "weights_digest"]

GRAPH_DIR = "onnx"
SHIPPED_GRAPH = "model.onnx"
INT8_GRAPH = "model.int8.onnx"
META = "meta.json"
ONNX_FORMAT = 1


def weights_digest(folder: Path) -> str:
    """sha256 of the model's weights: the shipped graphs record it, so stale graphs are noticed."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.safetensors")):
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def shipped_graphs(folder: Path) -> dict | None:
    """The metadata of the graphs shipped in ``folder/onnx``, or None where there are none."""
    path = Path(folder) / GRAPH_DIR / META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("format") != ONNX_FORMAT:
        return None
    return meta


def cores() -> int:
    """Cores this process may run on (``CODESEER_THREADS`` caps it)."""
    setting = os.environ.get("CODESEER_THREADS")
    if setting and setting.isdigit() and int(setting) > 0:
        return int(setting)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class RustTokenizer:
    """A model's ``tokenizer.json`` with the part of the Hugging Face tokenizer API codeseer uses.

    :class:`codeseer.models.backends.TokenBatcher` calls it like a ``transformers`` tokenizer
    (``tokenizer(texts, truncation=True, max_length=N)``, ``pad``); ``token_counter`` sees a
    ``tokenizers.Tokenizer`` (``encode``, ``encode_batch``). Truncating and plain encodings use
    separate instances, so counting tokens in one thread never truncates another thread's batch.
    """

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        folder = Path(folder)
        try:
            self._plain = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:
            raise CodeseerError(f"could not load the tokenizer in {folder}: {exc}") from exc
        self._plain.no_truncation()
        self._plain.no_padding()
        self._json = self._plain.to_str()
        self._truncating: dict[int, object] = {}
        self._lock = threading.Lock()
        config = _read_json(folder / "tokenizer_config.json")
        self.model_max_length = config.get("model_max_length")
        self.padding_side = config.get("padding_side", "right")
        self.pad_token = _token_text(config.get("pad_token"))
        self.eos_token = _token_text(config.get("eos_token"))
        self.pad_token_id = self._plain.token_to_id(self.pad_token) if self.pad_token else None
        self.eos_token_id = self._plain.token_to_id(self.eos_token) if self.eos_token else None
        self.pad_token_type_id = int(config.get("pad_token_type_id", 0))

    # -- the tokenizers.Tokenizer side (token counting)
    def encode(self, text: str, add_special_tokens: bool = True):
        return self._plain.encode(text, add_special_tokens=add_special_tokens)

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = True):
        return self._plain.encode_batch(list(texts), add_special_tokens=add_special_tokens)

    # -- the transformers side (TokenBatcher)
    def _truncating_at(self, max_length: int):
        with self._lock:
            tok = self._truncating.get(max_length)
            if tok is None:
                from tokenizers import Tokenizer

                tok = Tokenizer.from_str(self._json)
                tok.enable_truncation(max_length, strategy="longest_first")
                self._truncating[max_length] = tok
            return tok

    def __call__(self, texts, truncation: bool = True, max_length: int | None = None, add_special_tokens: bool = True,
                 **_ignored) -> dict[str, list[list[int]]]:
        texts = [texts] if isinstance(texts, str) else list(texts)
        tok = self._truncating_at(max_length) if truncation and max_length else self._plain
        encodings = tok.encode_batch(texts, add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encodings], "attention_mask": [e.attention_mask for e in encodings],
                "token_type_ids": [e.type_ids for e in encodings]}

    def pad(self, enc: dict[str, list[list[int]]], padding: bool = True, return_tensors: str = "np", **_ignored):
        """Pad every row to the longest with the pad token (mask 0), on the tokenizer's own side."""
        rows = enc["input_ids"]
        width = max((len(r) for r in rows), default=0)
        fill = {"input_ids": self.pad_token_id or 0, "attention_mask": 0, "token_type_ids": self.pad_token_type_id}
        out = {}
        for key, values in enc.items():
            array = np.full((len(values), width), fill.get(key, 0), dtype=np.int64)
            for i, row in enumerate(values):
                if not row:
                    continue
                if self.padding_side == "left":
                    array[i, width - len(row):] = row
                else:
                    array[i, : len(row)] = row
            out[key] = array
        return out


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _token_text(token) -> str | None:
    """A special token as written in tokenizer_config.json: a string, or ``{"content": ...}``."""
    if isinstance(token, dict):
        return token.get("content")
    return token


class ShippedOnnxEncoder:
    """The shipped graph of a bundled model: same tokenisation and batching as the torch encoders."""

    backend = "onnx"

    def __init__(self, folder: Path, meta: dict, *, quantize: bool = False, max_seq_length: int | None = None,
                 batch_size: int = 32, threads: int | None = None) -> None:
        from codeseer.models.backends import TokenBatcher

        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise CodeseerError("codeseer needs onnxruntime: pip install onnxruntime") from exc
        self.folder = Path(folder)
        self.pooling = meta["pooling"]
        self.inputs = list(meta["inputs"])
        self.dim = int(meta["dim"])
        self.quantized = quantize
        self.tokenizer = RustTokenizer(self.folder)
        self.max_length = self.max_seq_length = int(max_seq_length or meta["max_seq_length"])
        self.batcher = TokenBatcher(self.tokenizer, self.max_length)
        self.path = self.folder / GRAPH_DIR / meta["graphs"]["int8" if quantize else "fp32"]
        self.workers = max(1, threads or cores()) if quantize else 1
        # int8: one text per call, one single-threaded call per core; fp32: batches on every core.
        self.batch_size = 1 if quantize else batch_size
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if quantize:
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
        elif threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise CodeseerError(f"could not load {self.path}: {exc}; reinstall codeseer") from exc
        self._pool: ThreadPoolExecutor | None = None

    def _forward(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {n: batch[n] if n in batch else np.zeros_like(batch["input_ids"]) for n in self.inputs}
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        return self.encode_tokens(self.tokenize(texts))

    def tokenize(self, texts: Sequence[str]) -> dict[str, list[list[int]]]:
        return self.batcher.prepare(list(texts)) if texts else {"input_ids": []}

    def encode_tokens(self, enc: dict[str, list[list[int]]]) -> np.ndarray:
        from codeseer.models.backends import encode_prepared

        n = len(enc["input_ids"])
        if self.workers == 1 or n < 2:
            return encode_prepared(enc, self.batcher, self._forward, self.batch_size, self.dim)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="codeseer-onnx")
        out = np.zeros((n, self.dim), dtype=np.float32)
        rows = [{k: [v[i]] for k, v in enc.items()} for i in range(n)]
        for i, vector in enumerate(self._pool.map(lambda row: self._forward(self.batcher.pad(row))[0], rows)):
            out[i] = vector
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
