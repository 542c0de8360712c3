"""Encoders: raw texts in, one pooled float32 vector per text out (not yet normalised).

* :class:`TransformerEncoder` — ``AutoTokenizer`` + ``AutoModel`` and the model's published pooling
  rule (last token / mean / first token), or a T5 encoder with a projection head (CodeT5+ embedding).
* :class:`SentenceTransformerEncoder` — the previous code path, kept for plain sentence-transformers
  encoder folders such as the default MiniLM (checked against AutoModel + mean pooling in the tests).
* :class:`StaticEncoder` — model2vec static embeddings (via ``model2vec`` when installed, else a
  NumPy re-implementation of its encode rule).

Tokenisation is shared with the ONNX backend (:class:`TokenBatcher`) so both feed identical ids.
Heavy imports happen inside functions: importing this module does not import torch.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codeseer.errors import CodeseerError
from codeseer.models.registry import (
    BERT_ENCODER,
    CLS,
    GEMMA2_DECODER,
    GTE_ENCODER,
    LAST,
    MEAN,
    NOMIC_BERT_ENCODER,
    PROJECTION,
    QWEN2_DECODER,
    STATIC,
    STATIC_MEAN,
    T5_PROJECTION,
)

# model_type in config.json -> family, for local folders without a recipe.
_MODEL_TYPE_FAMILY = {
    "qwen2": QWEN2_DECODER,
    "gemma2": GEMMA2_DECODER,
    "bert": BERT_ENCODER,
    "nomic_bert": NOMIC_BERT_ENCODER,
    "new": GTE_ENCODER,
    "codet5p_embedding": T5_PROJECTION,
}
_DECODER_TYPES = {"qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "llama", "mistral", "phi3", "starcoder2"}
_ST_POOLING_KEYS = (
    ("pooling_mode_lasttoken", LAST),
    ("pooling_mode_cls_token", CLS),
    ("pooling_mode_mean_tokens", MEAN),
)


@dataclass
class FolderInfo:
    """What a local model folder says about itself."""

    path: Path
    config: dict = field(default_factory=dict)
    model_type: str | None = None
    family: str | None = None
    is_decoder: bool = False
    is_static: bool = False
    st_modules: list[str] | None = None  # sentence-transformers module types, when modules.json exists
    st_pooling: str | None = None
    st_max_seq_length: int | None = None

    @property
    def default_pooling(self) -> str:
        if self.is_static:
            return STATIC_MEAN
        if self.family == T5_PROJECTION:
            return PROJECTION
        if self.st_pooling:
            return self.st_pooling
        return LAST if self.is_decoder else MEAN

    @property
    def simple_st_encoder(self) -> bool:
        """A sentence-transformers folder made only of Transformer + Pooling (+ Normalize), on an encoder."""
        if not self.st_modules or self.is_decoder or self.is_static:
            return False
        kinds = [m.rsplit(".", 1)[-1] for m in self.st_modules]
        return kinds[:2] == ["Transformer", "Pooling"] and all(k == "Normalize" for k in kinds[2:])


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def local_folder(location: str) -> Path:
    """A folder on disk for ``location``: the path itself, or the hub id's snapshot in the local HF cache."""
    path = Path(location).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(location, local_files_only=True))
    except Exception as exc:
        raise CodeseerError(
            f"{location} is not a folder and is not in the local Hugging Face cache; on an offline machine "
            f"mirror the weights and pass --model /path/to/folder --recipe {location}"
        ) from exc


def inspect_folder(path: Path) -> FolderInfo:
    info = FolderInfo(path=path, config=_read_json(path / "config.json"))
    info.model_type = info.config.get("model_type")
    info.family = _MODEL_TYPE_FAMILY.get(info.model_type or "", info.model_type)
    info.is_decoder = (info.model_type in _DECODER_TYPES) or bool(info.config.get("is_decoder"))
    if info.model_type is None and (path / "model.safetensors").exists() and (path / "tokenizer.json").exists():
        info.is_static = _has_static_layout(path)
        if info.is_static:
            info.family = STATIC
    modules = path / "modules.json"
    if modules.exists():
        entries = _read_json(modules) if modules.stat().st_size else []
        if isinstance(entries, list):
            info.st_modules = [str(e.get("type", "")) for e in entries]
            for e in entries:
                if str(e.get("type", "")).endswith("Pooling"):
                    cfg = _read_json(path / e.get("path", "") / "config.json")
                    for key, name in _ST_POOLING_KEYS:
                        if cfg.get(key):
                            info.st_pooling = name
                            break
                if str(e.get("type", "")).endswith("StaticEmbedding"):
                    info.is_static, info.family = True, STATIC
        info.st_max_seq_length = _read_json(path / "sentence_bert_config.json").get("max_seq_length")
    return info


def _has_static_layout(path: Path) -> bool:
    try:
        from safetensors import safe_open

        with safe_open(str(path / "model.safetensors"), framework="numpy") as f:
            return "embeddings" in f.keys()
    except Exception:
        return False


def pick_max_length(explicit: int | None, recipe_max: int | None, info: FolderInfo, tokenizer=None) -> int:
    """The input limit a transformer folder runs at; without a loaded ``tokenizer`` its limit is read
    from ``tokenizer_config.json`` (listing models should not load tokenizers)."""
    for value in (explicit, recipe_max, info.st_max_seq_length):
        if value:
            return int(value)
    if tokenizer is None:
        tok_max = _read_json(info.path / "tokenizer_config.json").get("model_max_length")
    else:
        tok_max = getattr(tokenizer, "model_max_length", None)
    if tok_max and tok_max < 1_000_000:
        return int(tok_max)
    pos = info.config.get("max_position_embeddings") or info.config.get("n_positions")
    return int(pos) if pos else 512


def static_max_length(config: dict) -> int:
    """model2vec's truncation: its config's ``max_length``, 512 tokens where it gives none."""
    return config.get("max_length", 512)


class TokenBatcher:
    """Texts -> padded id arrays, the same way for the torch and ONNX backends.

    Truncates to ``max_length`` tokens (special tokens included), optionally appends the EOS token when
    the tokenizer does not, then pads on the tokenizer's own side (``padding_side``).
    """

    def __init__(self, tokenizer, max_length: int, *, append_eos: bool = False, padding_side: str | None = None):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.append_eos = append_eos and tokenizer.eos_token_id is not None
        if padding_side:
            tokenizer.padding_side = padding_side
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise CodeseerError("the tokenizer has neither a pad token nor an EOS token to pad with")
            tokenizer.pad_token = tokenizer.eos_token

    def lengths(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.prepare(texts)["input_ids"]]

    def prepare(self, texts: Sequence[str]) -> dict[str, list[list[int]]]:
        """Token ids per text (truncated, EOS appended when asked), not padded yet."""
        limit = self.max_length - (1 if self.append_eos else 0)
        enc = self.tokenizer(list(texts), truncation=True, max_length=limit)
        enc = {k: [list(v) for v in vals] for k, vals in enc.items()
               if k in ("input_ids", "attention_mask", "token_type_ids")}
        if self.append_eos:
            eos = self.tokenizer.eos_token_id
            for i, ids in enumerate(enc["input_ids"]):
                if not ids or ids[-1] != eos:
                    ids.append(eos)
                    enc["attention_mask"][i].append(1)
                    if "token_type_ids" in enc:
                        enc["token_type_ids"][i].append(enc["token_type_ids"][i][-1] if enc["token_type_ids"][i] else 0)
        return enc

    def pad(self, enc: dict[str, list[list[int]]]) -> dict[str, np.ndarray]:
        padded = self.tokenizer.pad(enc, padding=True, return_tensors="np")
        return {k: np.asarray(v, dtype=np.int64) for k, v in padded.items()}

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self.pad(self.prepare(texts))


def _quiet_hf() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except Exception:  # pragma: no cover - cosmetic only
        pass


def load_tokenizer(path: Path, trust_remote_code: bool = False):
    _quiet_hf()
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise CodeseerError(f"could not load the tokenizer in {path}: {exc}") from exc


# --------------------------------------------------------------------------------------------------
# T5 encoder + projection head (CodeT5+ 110m embedding), rebuilt without trust_remote_code.


def _t5_state_dict(path: Path) -> dict:
    import torch

    if (path / "model.safetensors").exists():
        from safetensors.torch import load_file

        return load_file(str(path / "model.safetensors"))
    if (path / "pytorch_model.bin").exists():
        return torch.load(str(path / "pytorch_model.bin"), map_location="cpu", weights_only=True)
    raise CodeseerError(f"no model.safetensors or pytorch_model.bin in {path}")


def load_t5_projection(path: Path, config: dict, *, with_projection: bool = True):
    """``T5EncoderModel`` + ``Linear(d_model, embed_dim)`` with the checkpoint's weights (keys ``encoder.*``,
    ``shared.weight``, ``proj.*``), the architecture of modeling_codet5p_embedding.py."""
    import torch
    from torch import nn
    from transformers import T5Config, T5EncoderModel

    drop = {"architectures", "auto_map", "model_type", "_name_or_path", "embed_dim", "transformers_version",
            "torch_dtype", "dtype", "id2label", "label2id"}
    t5_config = T5Config(**{k: v for k, v in config.items() if k not in drop})
    encoder = T5EncoderModel(t5_config)
    state = _t5_state_dict(path)
    enc_state = {k: v for k, v in state.items() if not k.startswith("proj.")}
    if "shared.weight" not in enc_state and "encoder.embed_tokens.weight" in enc_state:
        enc_state["shared.weight"] = enc_state["encoder.embed_tokens.weight"]
    if "encoder.embed_tokens.weight" not in enc_state and "shared.weight" in enc_state:
        enc_state["encoder.embed_tokens.weight"] = enc_state["shared.weight"]
    missing, unexpected = encoder.load_state_dict(enc_state, strict=False)
    if missing:
        raise CodeseerError(f"{path}: checkpoint lacks T5 encoder weights: {', '.join(missing[:5])}")
    encoder.eval()
    proj = None
    if with_projection:
        if "proj.weight" not in state:
            raise CodeseerError(f"{path}: no projection head (proj.weight) in the checkpoint")
        weight = state["proj.weight"]
        proj = nn.Linear(weight.shape[1], weight.shape[0], bias="proj.bias" in state)
        with torch.no_grad():
            proj.weight.copy_(weight)
            if "proj.bias" in state:
                proj.bias.copy_(state["proj.bias"])
        proj.eval()
    return encoder, proj


def build_pooled_module(model, pooling: str, proj=None):
    """One ``nn.Module``: (input_ids, attention_mask[, token_type_ids]) -> pooled vectors; used eagerly and for ONNX."""
    from torch import nn

    from codeseer.models import pooling as pool_ops

    accepts = set(inspect.signature(model.forward).parameters)

    class Pooled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.proj = proj
            self.accepts_token_type_ids = "token_type_ids" in accepts

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None and self.accepts_token_type_ids:
                kwargs["token_type_ids"] = token_type_ids
            out = self.model(**kwargs)
            hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
            if pooling == PROJECTION:
                return self.proj(pool_ops.first_token(hidden, attention_mask))
            return pool_ops.pool(hidden, attention_mask, pooling)

    module = Pooled()
    module.eval()
    return module


class TransformerEncoder:
    """AutoTokenizer + AutoModel (or T5 encoder + projection) + a pooling rule."""

    backend = "torch"

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
        device: str = "cpu",
        batch_size: int = 32,
        attn_implementation: str | None = None,
    ) -> None:
        _quiet_hf()
        import torch

        self.folder = folder
        self.info = info
        self.pooling = pooling
        self.device = device
        self.batch_size = batch_size
        self.tokenizer = load_tokenizer(folder, trust_remote_code)
        self.max_length = self.max_seq_length = pick_max_length(max_seq_length, None, info, self.tokenizer)
        self.batcher = TokenBatcher(self.tokenizer, self.max_length, append_eos=append_eos, padding_side=padding_side)
        proj = None
        try:
            if info.family == T5_PROJECTION:
                model, proj = load_t5_projection(folder, info.config, with_projection=pooling == PROJECTION)
            else:
                from transformers import AutoModel

                kwargs = {"trust_remote_code": trust_remote_code, "dtype": torch.float32}
                if attn_implementation:
                    kwargs["attn_implementation"] = attn_implementation
                model = AutoModel.from_pretrained(str(folder), **kwargs)
        except CodeseerError:
            raise
        except Exception as exc:
            hint = " (this model needs trust_remote_code: its card ships custom code)" if not trust_remote_code and (
                "trust_remote_code" in str(exc)) else ""
            raise CodeseerError(f"could not load the model in {folder}: {exc}{hint}") from exc
        if pooling == PROJECTION and proj is None:
            raise CodeseerError(f"pooling 'projection' needs a projection head; {folder} has none")
        self.module = build_pooled_module(model.eval(), pooling, proj).to(device)
        if proj is not None:
            self.dim = int(proj.out_features)
        else:
            cfg = model.config
            self.dim = int(getattr(cfg, "hidden_size", None) or cfg.d_model)

    def _forward(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            tensors = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
            out = self.module(tensors["input_ids"], tensors["attention_mask"], tensors.get("token_type_ids"))
        return out.float().cpu().numpy()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return encode_sorted(texts, self.batcher, self._forward, self.batch_size, self.dim)

    def tokenize(self, texts: Sequence[str]) -> dict[str, list[list[int]]]:
        return self.batcher.prepare(list(texts)) if texts else {"input_ids": []}

    def encode_tokens(self, enc: dict[str, list[list[int]]]) -> np.ndarray:
        return encode_prepared(enc, self.batcher, self._forward, self.batch_size, self.dim)


def encode_sorted(texts, batcher: TokenBatcher, forward, batch_size: int, dim: int) -> np.ndarray:
    """Tokenise once, batch texts of similar length together (less padding), restore the input order."""
    texts = list(texts)
    return encode_prepared(batcher.prepare(texts) if texts else {"input_ids": []}, batcher, forward, batch_size, dim)


def encode_prepared(enc: dict[str, list[list[int]]], batcher: TokenBatcher, forward, batch_size: int,
                    dim: int) -> np.ndarray:
    """:func:`encode_sorted` on texts already tokenised (``batcher.prepare``), e.g. in another thread."""
    n = len(enc["input_ids"])
    out = np.zeros((n, dim), dtype=np.float32)
    if not n:
        return out
    order = np.argsort([-len(ids) for ids in enc["input_ids"]], kind="stable")
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        out[idx] = forward(batcher.pad({k: [v[i] for i in idx] for k, v in enc.items()}))
    return out


class SentenceTransformerEncoder:
    """The previous code path: sentence-transformers on a plain encoder folder (Transformer + Pooling)."""

    backend = "torch"

    def __init__(self, location: str, *, max_seq_length: int | None, device: str, batch_size: int,
                 pooling: str) -> None:
        _quiet_hf()
        from sentence_transformers import SentenceTransformer

        self.batch_size = batch_size
        self.pooling = pooling
        self.model = SentenceTransformer(location, device=device)
        if max_seq_length:
            self.model.max_seq_length = max_seq_length
        self.max_length = self.max_seq_length = self.model.max_seq_length
        self.tokenizer = self.model.tokenizer
        self.dim = int(self.model.get_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                    show_progress_bar=False, normalize_embeddings=False)
        return np.asarray(vectors, dtype=np.float32)


# --------------------------------------------------------------------------------------------------
# Static embeddings (model2vec).


class StaticEncoder:
    """Mean of static token vectors, as model2vec's ``StaticModel.encode`` computes it."""

    backend = "static"
    pooling = STATIC_MEAN

    def __init__(self, folder: Path, *, max_seq_length: int | None = None, batch_size: int = 1024,
                 use_model2vec: bool | None = None) -> None:
        self.folder = folder
        self.batch_size = batch_size
        if use_model2vec is None:
            try:
                import model2vec  # noqa: F401

                use_model2vec = True
            except ImportError:
                use_model2vec = False
        self.uses_model2vec = use_model2vec
        if use_model2vec:
            from model2vec import StaticModel

            kwargs = {"max_length": max_seq_length} if max_seq_length else {}
            self._m2v = StaticModel.from_pretrained(str(folder), force_download=False, **kwargs)
            self.tokenizer = self._m2v.tokenizer
            self.max_length = self.max_seq_length = self._m2v.max_length
            self.dim = int(self._m2v.dim)
            return
        self._load_numpy(folder, max_seq_length)

    def _load_numpy(self, folder: Path, max_seq_length: int | None) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        st_layout = not (folder / "config.json").exists() and (folder / "config_sentence_transformers.json").exists()
        base = folder
        if not (folder / "model.safetensors").exists() and (folder / "0_StaticEmbedding").is_dir():
            base, st_layout = folder / "0_StaticEmbedding", True
        config = _read_json(folder / ("config_sentence_transformers.json" if st_layout else "config.json"))
        with safe_open(str(base / "model.safetensors"), framework="numpy") as f:
            keys = set(f.keys())
            self.embedding = f.get_tensor("embedding.weight" if "embedding.weight" in keys else "embeddings")
            self.weights = f.get_tensor("weights") if "weights" in keys else None
            self.mapping = f.get_tensor("mapping") if "mapping" in keys else None
        if self.embedding.dtype == np.int8:
            self.embedding = self.embedding.astype(np.float32)
        self.tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
        self.tokenizer.no_padding()
        tokens = [t for t, _ in sorted(self.tokenizer.get_vocab().items(), key=lambda x: x[1])]
        self.median_token_length = int(np.median([len(t) for t in tokens]))
        self.unk_token_id = _unk_id(self.tokenizer)
        self.max_length = self.max_seq_length = max_seq_length if max_seq_length else static_max_length(config)
        if self.max_length:
            self.tokenizer.enable_truncation(self.max_length)
        self.dim = int(self.embedding.shape[1])

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        if self.max_length:
            m = self.max_length * self.median_token_length
            texts = [t[:m] for t in texts]
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        ids = [e.ids for e in encodings]
        if self.unk_token_id is not None:
            ids = [[i for i in row if i != self.unk_token_id] for row in ids]
        return ids

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if self.uses_model2vec:
            if not texts:
                return np.zeros((0, self.dim), dtype=np.float32)
            vectors = self._m2v.encode(texts, batch_size=self.batch_size, show_progress_bar=False,
                                       use_multiprocessing=False)
            return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, ids in enumerate(self._ids(texts)):
            if not ids:
                continue
            rows = self.mapping[ids] if self.mapping is not None else ids
            emb = self.embedding[rows].astype(np.float32)
            if self.weights is not None:
                emb = emb * self.weights[ids][:, None]
            out[row] = emb.mean(axis=0)
        return out


def _unk_id(tokenizer) -> int | None:
    model = tokenizer.model
    if hasattr(model, "unk_token"):
        token = model.unk_token
        return None if token is None else tokenizer.token_to_id(token)
    return json.loads(tokenizer.to_str())["model"].get("unk_id")
