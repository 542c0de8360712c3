"""Every family encodes exactly like transformers + the published pooling rule (tolerance 1e-5).

References are computed here, independently of codeseer's code: AutoTokenizer + AutoModel and the
pooling function from the model cards (last_token_pool from the e5-mistral / gte-Qwen2 / jina cards,
mean_pooling from the sentence-transformers cards, ``[:, 0]`` for CLS, ``proj(last_hidden_state[:, 0])``
from modeling_codet5p_embedding.py, and model2vec's token-mean for static models).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from codeseer.errors import CodeseerError
import tiny_models as testing
from codeseer.models.embedder import CodeseerWarning, Embedder
from codeseer.models.registry import QWEN2_DECODER, ModelRecipe, Prompt

TOL = 1e-5
TEXTS = [
    "def add(a, b):\n    return a + b",
    "x",
    "how do I read a csv file in python and keep the header row?",
    "SELECT name FROM users WHERE id = 4;",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny-models")
    return {
        "qwen_right": testing.build_qwen2(base / "qwen-right", padding_side="right"),
        "qwen_left_eos": testing.build_qwen2(base / "qwen-left", padding_side="left", eos_in_template=True),
        "bert": testing.build_bert(base / "bert"),
        "bert_st": testing.build_bert(base / "bert-st", st_pooling="mean"),
        "t5": testing.build_t5_projection(base / "t5"),
        "static": testing.build_static(base / "static"),
        "static_q": testing.build_static(base / "static-q", quantized=True),
    }


# ---------------------------------------------------------------------------------------- references


def _normalize(t):
    import torch.nn.functional as F

    return F.normalize(t, p=2, dim=1).numpy()


def last_token_pool(last_hidden_states, attention_mask):
    # As published on the e5-mistral-7b-instruct / gte-Qwen2 / jina-code-embeddings cards.
    import torch

    left_padding = attention_mask[:, -1].sum() == attention_mask.shape[0]
    if left_padding:
        return last_hidden_states[:, -1]
    sequence_lengths = attention_mask.sum(dim=1) - 1
    batch_size = last_hidden_states.shape[0]
    return last_hidden_states[torch.arange(batch_size, device=last_hidden_states.device), sequence_lengths]


def mean_pooling(token_embeddings, attention_mask):
    # As published on the sentence-transformers model cards (all-MiniLM-L6-v2).
    import torch

    mask = attention_mask.unsqueeze(-1).expand(token_embeddings.size()).float()
    return torch.sum(token_embeddings * mask, 1) / torch.clamp(mask.sum(1), min=1e-9)


def reference(folder, texts, pooling, *, padding_side=None, max_length=512):
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    if padding_side:
        tok.padding_side = padding_side
    model = AutoModel.from_pretrained(str(folder)).eval()
    batch = tok(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    if pooling == "last":
        return _normalize(last_token_pool(hidden, batch["attention_mask"]))
    if pooling == "mean":
        return _normalize(mean_pooling(hidden, batch["attention_mask"]))
    assert pooling == "cls"
    return _normalize(hidden[:, 0])


def reference_each(folder, texts, pooling, **kw):
    return np.concatenate([reference(folder, [t], pooling, **kw) for t in texts])


def reference_codet5p(folder, texts):
    """CodeT5pEmbeddingModel from the card's remote code: T5EncoderModel + proj on the first token."""
    import json

    import torch
    import torch.nn.functional as F
    from torch import nn
    from transformers import AutoTokenizer, T5Config, T5EncoderModel

    class CodeT5pEmbeddingModel(T5EncoderModel):
        def __init__(self, config):
            super().__init__(config)
            self.proj = nn.Linear(config.d_model, config.embed_dim)

        def forward(self, input_ids, attention_mask):
            encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
            return F.normalize(self.proj(encoder_outputs.last_hidden_state[:, 0, :]), dim=-1)

    raw = json.loads((folder / "config.json").read_text())
    config = T5Config(**{k: v for k, v in raw.items() if k not in ("model_type", "auto_map", "architectures")})
    model = CodeT5pEmbeddingModel.from_pretrained(str(folder), config=config).eval()
    tok = AutoTokenizer.from_pretrained(str(folder))
    batch = tok(list(texts), padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.no_grad():
        return model(batch["input_ids"], batch["attention_mask"]).numpy()


def assert_close(a, b, tol=TOL):
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = float(np.abs(a - b).max())
    assert diff <= tol, f"max abs diff {diff} > {tol}"


# ---------------------------------------------------------------------------------------- decoders


@pytest.mark.parametrize("name,side", [("qwen_right", "right"), ("qwen_left_eos", "left")])
def test_qwen2_last_token_matches_reference(tiny, name, side):
    folder = tiny[name]
    emb = Embedder(str(folder))
    assert (emb.family, emb.pooling, emb.tokenizer.padding_side) == (QWEN2_DECODER, "last", side)
    got = emb.encode_documents(TEXTS)
    assert_close(got, reference(folder, TEXTS, "last"))  # the same mixed-length batch
    assert_close(got, reference_each(folder, TEXTS, "last"))  # each text alone: padding changes nothing
    assert_close(emb.encode_documents(TEXTS[:1]), reference(folder, TEXTS[:1], "last"))
    # whichever side codeseer pads on, the vectors are the same
    other = Embedder(str(folder))
    other.tokenizer.padding_side = "left" if side == "right" else "right"
    assert_close(other.encode_documents(TEXTS), got)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


def test_eos_appended_by_tokenizer_is_the_pooled_token(tiny):
    emb = Embedder(str(tiny["qwen_left_eos"]))
    batch = emb._encoder.batcher(TEXTS)
    eos = emb.tokenizer.eos_token_id
    assert emb.tokenizer.pad_token_id == eos  # Qwen-style: pad == eos, so pooling must read the mask
    assert (batch["input_ids"][:, -1] == eos).all() and (batch["attention_mask"][:, -1] == 1).all()


def test_recipe_append_eos_when_tokenizer_does_not(tiny):
    folder = tiny["qwen_right"]
    recipe = ModelRecipe(hub_id="test/eos-decoder", family=QWEN2_DECODER, pooling="last", native_dim=32,
                         matryoshka_dims=(), max_seq_length=64, prompts=(), trust_remote_code=False,
                         license="MIT", non_commercial=False, sources=("https://example.org",), append_eos=True)
    emb = Embedder(str(folder), recipe=recipe)
    ids = emb._encoder.batcher(["def add"])["input_ids"][0]
    assert ids[-1] == emb.tokenizer.eos_token_id and (ids == emb.tokenizer.eos_token_id).sum() == 1
    expected = reference(folder, [t + testing.EOS for t in TEXTS], "last")
    assert_close(emb.encode_documents(TEXTS), expected)
    # already-terminated texts are not given a second EOS
    assert_close(emb.encode_documents([TEXTS[0] + testing.EOS]), expected[:1])


def test_recipe_prefixes_per_task_and_role(tiny):
    folder = tiny["qwen_right"]
    with pytest.warns(CodeseerWarning, match="non-commercial"):
        emb = Embedder(str(folder), recipe="jinaai/jina-code-embeddings-0.5b", task="code2nl")
    assert emb.query_prefix == "Find the most relevant comment given the following code snippet:\n"
    assert emb.document_prefix == "Candidate comment:\n"
    q, d = emb.encode_queries(TEXTS), emb.encode_documents(TEXTS)
    assert_close(q, reference(folder, [emb.query_prefix + t for t in TEXTS], "last"))
    assert_close(d, reference(folder, [emb.document_prefix + t for t in TEXTS], "last"))
    assert np.abs(q - d).max() > 1e-3  # the roles really differ
    assert_close(emb.encode(TEXTS, role="document"), d)
    with pytest.warns(CodeseerWarning):
        plain = Embedder(str(folder), query_prefix="", document_prefix="", recipe="jinaai/jina-code-embeddings-0.5b")
    assert_close(plain.encode_queries(TEXTS), reference(folder, TEXTS, "last"))


def test_pooling_override_on_a_decoder(tiny):
    folder = tiny["qwen_left_eos"]
    emb = Embedder(str(folder), pooling="mean")
    assert emb.pooling == "mean"
    assert_close(emb.encode_documents(TEXTS), reference(folder, TEXTS, "mean"))


# ---------------------------------------------------------------------------------------- encoders


def test_bert_mean_and_cls_match_reference(tiny):
    folder = tiny["bert"]
    mean = Embedder(str(folder))
    assert (mean.pooling, type(mean._encoder).__name__) == ("mean", "TransformerEncoder")
    assert_close(mean.encode_documents(TEXTS), reference(folder, TEXTS, "mean"))
    assert_close(mean.encode_documents(TEXTS), reference_each(folder, TEXTS, "mean"))
    cls = Embedder(str(folder), pooling="cls")
    assert_close(cls.encode_documents(TEXTS), reference(folder, TEXTS, "cls"))


def test_sentence_transformers_folder_matches_automodel_mean(tiny):
    folder = tiny["bert_st"]
    emb = Embedder(str(folder))
    assert type(emb._encoder).__name__ == "SentenceTransformerEncoder"  # the unchanged default path
    assert_close(emb.encode_documents(TEXTS), reference(folder, TEXTS, "mean", max_length=128))
    forced = Embedder(str(folder), pooling="cls")  # an override leaves sentence-transformers aside
    assert type(forced._encoder).__name__ == "TransformerEncoder"
    assert_close(forced.encode_documents(TEXTS), reference(folder, TEXTS, "cls", max_length=128))


def test_minilm_unchanged_and_equal_to_automodel_mean():
    from transformers import AutoTokenizer

    emb = Embedder("minilm")
    assert (emb.name, emb.dim, emb.query_prefix, emb.document_prefix) == (
        "sentence-transformers/all-MiniLM-L6-v2", 384, "", "")
    assert type(emb._encoder).__name__ == "SentenceTransformerEncoder"
    folder = emb.resolved.location
    auto = AutoTokenizer.from_pretrained(folder)
    assert emb.tokenizer(TEXTS)["input_ids"] == auto(TEXTS)["input_ids"]  # same tokenisation
    assert_close(emb.encode_documents(TEXTS), reference(folder, TEXTS, "mean", max_length=256))


def test_default_is_the_bundled_code_mini_and_equal_to_automodel_mean():
    """codeseer-code-mini: all-MiniLM-L6-v2's architecture and tokenizer, fine-tuned weights, 128 tokens."""
    from codeseer.models.embedder import BUNDLED_DIR, MINI_MODEL

    emb = Embedder(None)
    assert (emb.name, emb.dim, emb.query_prefix, emb.document_prefix, emb.max_seq_length) == (
        MINI_MODEL, 384, "", "", 128)
    assert emb.resolved.location == str(BUNDLED_DIR / MINI_MODEL)
    assert Embedder("default").name == MINI_MODEL
    assert_close(emb.encode_documents(TEXTS), reference(emb.resolved.location, TEXTS, "mean", max_length=128))
    base = Embedder("minilm").encode_documents(TEXTS)
    assert float(np.abs(emb.encode_documents(TEXTS) - base).max()) > 1e-3  # the weights are not MiniLM's


def test_t5_projection_head_matches_card_code(tiny):
    folder = tiny["t5"]
    emb = Embedder(str(folder))
    assert (emb.family, emb.pooling, emb.dim) == ("t5-encoder-projection", "projection", 16)
    assert_close(emb.encode_documents(TEXTS), reference_codet5p(folder, TEXTS))
    # the registry recipe applies to a local mirror too (no remote code needed)
    mirror = Embedder(str(folder), recipe="Salesforce/codet5p-110m-embedding")
    assert_close(mirror.encode_queries(TEXTS), reference_codet5p(folder, TEXTS))
    encoder_only = Embedder(str(folder), pooling="mean")
    assert encoder_only.dim == 32


# ---------------------------------------------------------------------------------------- static


def _static_reference(folder, texts):
    """model2vec's rule: tokens without special tokens, unknown tokens dropped, (weighted, mapped) mean."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    tensors = load_file(str(folder / "model.safetensors"))
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()  # MiniLM's tokenizer.json pads to 128: model2vec switches that off
    unk = tok.token_to_id("[UNK]")
    rows = []
    for t in texts:
        ids = [i for i in tok.encode(t, add_special_tokens=False).ids if i != unk]
        idx = tensors["mapping"][ids] if "mapping" in tensors else ids
        vecs = tensors["embeddings"][idx]
        if "weights" in tensors:
            vecs = vecs * tensors["weights"][ids][:, None]
        v = vecs.mean(axis=0)
        rows.append(v / np.linalg.norm(v))
    return np.stack(rows).astype(np.float32)


@pytest.mark.parametrize("name", ["static", "static_q"])
def test_static_mean_matches_model2vec_rule(tiny, name):
    from codeseer.models.backends import StaticEncoder

    folder = tiny[name]
    expected = _static_reference(folder, TEXTS)
    numpy_only = StaticEncoder(folder, use_model2vec=False)
    from codeseer.models.pooling import l2_normalize

    assert_close(l2_normalize(numpy_only.encode(TEXTS)), expected)
    emb = Embedder(str(folder))
    assert (emb.family, emb.pooling, emb.dim) == ("static", "static", 8)
    assert_close(emb.encode_documents(TEXTS), expected)
    try:
        from model2vec import StaticModel
    except ImportError:
        return
    m2v = StaticModel.from_pretrained(str(folder), force_download=False).encode(TEXTS)
    assert_close(emb.encode_documents(TEXTS), m2v.astype(np.float32))


def test_static_rejects_pooling_override(tiny):
    with pytest.raises(CodeseerError, match="static"):
        Embedder(str(tiny["static"]), pooling="mean")


# ---------------------------------------------------------------------------------------- Matryoshka


def test_matryoshka_truncation_and_refusals(tiny):
    folder = tiny["qwen_right"]
    full = reference(folder, TEXTS, "last")
    recipe = ModelRecipe(hub_id="test/mrl", family=QWEN2_DECODER, pooling="last", native_dim=32,
                         matryoshka_dims=(8, 16, 32), max_seq_length=64,
                         prompts=(Prompt("nl2code", "q: ", "d: "),), trust_remote_code=False,
                         license="MIT", non_commercial=False, sources=("https://example.org",), asymmetric=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a listed Matryoshka dimension needs no warning
        emb = Embedder(str(folder), recipe=recipe, dim=16, query_prefix="", document_prefix="")
    got = emb.encode_documents(TEXTS)
    expected = full[:, :16] / np.linalg.norm(full[:, :16], axis=1, keepdims=True)
    assert emb.dim == 16 and emb.native_dim == 32
    assert_close(got, expected)
    with pytest.raises(CodeseerError, match="Matryoshka"):
        Embedder(str(folder), recipe=recipe, dim=12)
    with pytest.raises(CodeseerError, match="larger"):
        Embedder(str(folder), dim=64)
    with pytest.warns(CodeseerWarning, match="Matryoshka"):
        untrained = Embedder(str(folder), dim=8)
    assert_close(untrained.encode_documents(TEXTS), full[:, :8] / np.linalg.norm(full[:, :8], axis=1, keepdims=True))


def test_argument_errors(tiny):
    with pytest.raises(CodeseerError, match="pooling"):
        Embedder(str(tiny["bert"]), pooling="max")
    with pytest.raises(CodeseerError, match="onnx"):
        Embedder(str(tiny["bert"]), quantize=True)
    with pytest.raises(CodeseerError, match="backend"):
        Embedder(str(tiny["bert"]), backend="tensorrt")
    with pytest.raises(CodeseerError, match="task"):
        Embedder(str(tiny["bert"]), task="summarise")
    with pytest.raises(CodeseerError, match="recipe"):
        Embedder(str(tiny["bert"]), recipe="org/unknown")


def test_pooling_rules_on_both_padding_sides():
    import torch

    from codeseer.models.pooling import first_token, last_token, mean_tokens

    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert last_token(hidden, right)[:, 0].tolist() == [1.0, 7.0]
    assert last_token(hidden, left)[:, 0].tolist() == [3.0, 7.0]
    assert first_token(hidden, right)[:, 0].tolist() == [0.0, 4.0]
    assert first_token(hidden, left)[:, 0].tolist() == [2.0, 4.0]
    assert mean_tokens(hidden, left)[:, 0].tolist() == [2.5, 5.5]
