"""Embedding models: tasks, a registry of model recipes, loading (offline-first) and encoding."""

from codeseer.models.embedder import DEFAULT_MODEL, Embedder, resolve_model
from codeseer.models.factory import load_embedder
from codeseer.models.registry import REGISTRY, ModelRecipe, find_recipe, get_recipe
from codeseer.models.tasks import TASKS, get_task

__all__ = [
    "DEFAULT_MODEL",
    "Embedder",
    "ModelRecipe",
    "REGISTRY",
    "TASKS",
    "find_recipe",
    "get_recipe",
    "get_task",
    "load_embedder",
    "resolve_model",
]
