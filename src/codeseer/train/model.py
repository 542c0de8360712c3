"""The model side of a ``codeseer train`` run: load the base, freeze layers, merge back, save as float16.

Apart from the loop and the data because these are the steps that touch the weights themselves
(torch, sentence-transformers), before and after training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeseer.errors import CodeseerError
from codeseer.train.config import TrainConfig

__all__ = ["Base", "freeze_lower_layers", "load_base", "merge_weights", "save_float16"]


@dataclass
class Base:
    """The model a run trains, where it came from and what was done to it before training."""

    model: Any  # SentenceTransformer
    resolved: Any  # codeseer.models.embedder's resolved model: .name, .location
    recipe: Any  # the registry recipe (prefixes), or None
    frozen: dict[str, int]  # parameter counts from freeze_lower_layers
    state: dict | None  # a copy of the base weights, kept for --merge-base < 1


def load_base(cfg: TrainConfig) -> Base:
    """Seed everything with ``cfg.seed``, load the base model, freeze its lower layers and, for
    ``--merge-base``, keep a copy of its weights."""
    from transformers import set_seed

    set_seed(cfg.seed)
    model, resolved, recipe = _load_model(cfg.base, cfg.recipe, cfg.max_seq_length, cfg.device)
    frozen = freeze_lower_layers(model, cfg.freeze_layers)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()} if cfg.merge_base < 1 else None
    return Base(model, resolved, recipe, frozen, state)


def _load_model(base: str | None, recipe_name: str | None, max_seq_length: int, device: str | None):
    import torch

    from codeseer.models.backends import local_folder
    from codeseer.models.embedder import MINILM_MODEL, resolve_model
    from codeseer.models.registry import find_recipe, get_recipe

    try:  # the recipe starts from all-MiniLM-L6-v2, not from the default model it produced
        resolved = resolve_model(base or MINILM_MODEL)
        folder = local_folder(resolved.location)
    except CodeseerError as exc:
        raise CodeseerError(f"base model not found: {base} ({exc})") from None
    recipe = get_recipe(recipe_name) if recipe_name else find_recipe(resolved.name)
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    kwargs = dict(device=device, model_kwargs={"dtype": torch.float32},
                  trust_remote_code=bool(recipe and recipe.trust_remote_code))
    try:
        if (folder / "modules.json").is_file():
            model = SentenceTransformer(str(folder), **kwargs)
        else:  # a plain transformers folder: pool the way its recipe says (mean without one)
            modes = {"mean": "mean", "cls": "cls", "last": "lasttoken"}
            mode = modes.get(recipe.pooling, "mean") if recipe else "mean"
            encoder = Transformer(str(folder), max_seq_length=max_seq_length, model_args={"dtype": torch.float32})
            pool = Pooling(encoder.get_embedding_dimension(), pooling_mode=mode)
            model = SentenceTransformer(modules=[encoder, pool], device=device)
    except Exception as exc:  # a folder that is not a model
        raise CodeseerError(f"could not load base model {resolved.name}: {exc}") from exc
    model.max_seq_length = max_seq_length
    return model, resolved, recipe


def _encoder_parts(model):
    auto = model[0].auto_model
    embeddings = getattr(auto, "embeddings", None) or getattr(auto, "embed_tokens", None)
    if embeddings is None and hasattr(auto, "get_input_embeddings"):
        embeddings = auto.get_input_embeddings()
    for path in ("encoder.layer", "layers", "encoder.block", "transformer.layer", "encoder.layers"):
        obj = auto
        for attr in path.split("."):
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if obj is not None:
            return embeddings, list(obj)
    raise CodeseerError(f"--freeze-layers: cannot find the layers of {type(auto).__name__}")


def freeze_lower_layers(model, n: int) -> dict[str, int]:
    """Freeze the token embeddings and the first ``n`` transformer layers; returns parameter counts."""
    if n <= 0:
        total = sum(p.numel() for p in model.parameters())
        return {"frozen_parameters": 0, "trainable_parameters": total, "layers": 0}
    embeddings, layers = _encoder_parts(model)
    if n > len(layers):
        raise CodeseerError(f"--freeze-layers {n}: the model has only {len(layers)} layers")
    for module in [embeddings, *layers[:n]]:
        for p in module.parameters():
            p.requires_grad_(False)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"frozen_parameters": frozen, "trainable_parameters": trainable, "layers": len(layers)}


def merge_weights(model, base_state: dict, alpha: float) -> None:
    """In place: every floating-point tensor becomes ``alpha * trained + (1 - alpha) * base``."""
    import torch

    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name in base_state and tensor.is_floating_point():
                tensor.mul_(alpha).add_(base_state[name].to(tensor.device, tensor.dtype), alpha=1 - alpha)


def save_float16(model, out_dir: Path) -> None:
    """Save ``model`` as a sentence-transformers folder with float16 safetensors; config.json keeps
    ``dtype: float32`` so loaders (sentence-transformers, codeseer) compute in float32 on a CPU."""
    model.half()
    try:
        model.save_pretrained(str(out_dir), create_model_card=False, safe_serialization=True)
    finally:
        model.float()
    # The card after, in float32: its usage snippet runs the model, which float16 cannot on a CPU.
    model._create_model_card(str(out_dir))
    for config in [out_dir / "config.json", *out_dir.glob("*/config.json")]:
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and ("dtype" in data or "torch_dtype" in data):
            data.pop("torch_dtype", None)
            data["dtype"] = "float32"
            config.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
