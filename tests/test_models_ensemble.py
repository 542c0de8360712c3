"""``--model a+b``: the joined vector's dot product is the mean of the members' cosines, everywhere."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from codeseer.errors import CodeseerError
import tiny_models as testing
from codeseer.models.embedder import Embedder, resolve_model
from codeseer.models.factory import load_embedder
from codeseer.models.ensemble import EnsembleEmbedder, split_members
from tests.conftest import run_cli, write_files

QUERIES = ["read a csv file", "sort a dict by value", "x"]
DOCS = [
    "def load(path):\n    return pandas.read_csv(path)",
    "sorted(d.items(), key=lambda kv: kv[1])",
    "class Stack:\n    def push(self, item):\n        self.items.append(item)",
    "SELECT name FROM users WHERE id = 4;",
    "fn main() { println!(\"hi\"); }",
]


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    base = tmp_path_factory.mktemp("ensemble-members")
    return testing.build_bert(base / "bert", st_pooling="mean"), testing.build_static(base / "static", dim=8)


@pytest.fixture(scope="module")
def pair(members):
    bert, static = members
    return load_embedder(f"{bert}+{static}"), Embedder(str(bert)), Embedder(str(static))


def test_scores_are_the_mean_of_member_cosines(pair):
    ensemble, bert, static = pair
    assert isinstance(ensemble, EnsembleEmbedder) and isinstance(ensemble, Embedder)
    assert ensemble.dim == bert.dim + static.dim == 40
    q, d = ensemble.encode_queries(QUERIES), ensemble.encode_documents(DOCS)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-6)
    mean_cosine = (bert.encode_queries(QUERIES) @ bert.encode_documents(DOCS).T
                   + static.encode_queries(QUERIES) @ static.encode_documents(DOCS).T) / 2
    np.testing.assert_allclose(q @ d.T, mean_cosine, atol=1e-6)
    # the layout is the members' vectors side by side, each scaled by 1/sqrt(2)
    np.testing.assert_allclose(d[:, :32] * np.sqrt(2), bert.encode_documents(DOCS), atol=1e-6)
    np.testing.assert_allclose(d[:, 32:] * np.sqrt(2), static.encode_documents(DOCS), atol=1e-6)


def test_documents_come_in_slabs_like_one_model(pair):
    ensemble = pair[0]
    seen = []
    out = ensemble.encode_documents(DOCS, slab=2, on_slab=lambda start, v: seen.append((start, v.shape)))
    assert seen == [(0, (2, 40)), (2, (2, 40)), (4, (1, 40))]
    np.testing.assert_allclose(out, ensemble.encode_documents(DOCS), atol=1e-6)
    np.testing.assert_allclose(ensemble.encode(DOCS, role="document"), out, atol=1e-6)
    assert ensemble.encode_documents([]).shape == (0, 40)


def test_name_fingerprint_and_description(members, pair):
    bert, static = members
    ensemble = pair[0]
    assert ensemble.name == f"{bert.resolve()}+{static.resolve()}" == resolve_model(f"{bert}+{static}").name
    swapped = load_embedder(f"{static}+{bert}")
    assert swapped.fingerprint() != ensemble.fingerprint()  # another layout: cached vectors must not be shared
    assert ensemble.fingerprint() not in (pair[1].fingerprint(), pair[2].fingerprint())
    assert ensemble.fingerprint() == load_embedder(f"{bert}+{static}").fingerprint()
    info = ensemble.describe()
    assert info["family"] == "ensemble" and info["dim"] == 40
    assert [m["dim"] for m in info["members"]] == [32, 8]
    assert ensemble.tokenizer is ensemble.members[0].tokenizer  # budgets count the first member's tokens
    assert ensemble.max_seq_length == pair[1].max_seq_length


def test_a_folder_with_a_plus_in_its_name_is_one_model(members, tmp_path):
    folder = tmp_path / "c++model"
    shutil.copytree(members[0], folder)
    assert split_members(str(folder)) is None
    assert type(load_embedder(str(folder))) is Embedder


def test_bad_ensembles_are_one_clear_error(members):
    bert, static = members
    with pytest.raises(CodeseerError, match="empty model name"):
        load_embedder(f"{bert}+")
    with pytest.raises(CodeseerError, match="twice"):
        load_embedder(f"{bert}+{bert}")
    with pytest.raises(CodeseerError, match="--dim does not apply"):
        load_embedder(f"{bert}+{static}", dim=16)
    with pytest.raises(CodeseerError, match="--recipe applies to one model"):
        load_embedder(f"{bert}+{static}", recipe="nomic-ai/CodeRankEmbed")
    with pytest.raises(CodeseerError, match="model not found"):
        load_embedder(f"{bert}+no-such-model")


@pytest.mark.slow
def test_index_and_search_with_an_ensemble_of_the_offline_models(tmp_path):
    repo = write_files(tmp_path / "repo", {
        "net.py": '''
            def retry_with_backoff(operation, attempts=5):
                """Call operation again after a growing pause until it stops raising."""
                for attempt in range(attempts):
                    try:
                        return operation()
                    except Exception:
                        time.sleep(2 ** attempt)
            ''',
        "text.py": '''
            def slugify(title):
                """Turn a title into a lowercase url slug."""
                return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
            ''',
        "cart.js": '''
            class Cart {
              totalPrice() { return this.items.reduce((sum, item) => sum + item.price * item.qty, 0); }
            }
            ''',
    })
    result = run_cli("index", str(repo), "--model", "codeseer-code-mini+minilm")
    assert result.returncode == 0, result.stderr
    for query, symbol in [("retry an operation that sometimes fails", "retry_with_backoff"),
                          ("make a url slug from a title", "slugify"),
                          ("total price of the items in a shopping cart", "Cart.totalPrice")]:
        found = run_cli("search", query, "--mode", "dense", "--json", cwd=repo)
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)[0]["symbol"] == symbol
    similar = run_cli("similar", "--code", "def retry(op):\n    for i in range(3):\n        try:\n            return op()\n"
                      "        except Exception:\n            time.sleep(i)", "--json", cwd=repo)
    assert similar.returncode == 0, similar.stderr
    assert json.loads(similar.stdout)["hits"][0]["symbol"] == "retry_with_backoff"
    other = run_cli("search", "slug", "--model", "minilm", cwd=repo)  # one member alone is another model
    assert other.returncode != 0
    assert "codeseer-code-mini+sentence-transformers/all-MiniLM-L6-v2" in other.stderr


def test_task_prefixes_of_an_ensemble_are_per_member():
    """`similar` (code2code) needs its own embedder only when some member's recipe changes with the task."""
    from types import SimpleNamespace

    from codeseer.models.registry import task_prefixes
    from codeseer.models.registry import get_recipe

    plain = SimpleNamespace(model="codeseer-code-mini+/somewhere/all-mpnet-base-v2", recipe=None)
    assert task_prefixes(plain.model, plain.recipe, "code2code") is None
    jina = get_recipe("jinaai/jina-code-embeddings-0.5b")
    mixed = SimpleNamespace(model="jinaai/jina-code-embeddings-0.5b+codeseer-code-mini", recipe=None)
    assert task_prefixes(mixed.model, mixed.recipe, "code2code") == (
        (jina.prefix("code2code", "query"), ""), (jina.prefix("code2code", "document"), ""))
    assert task_prefixes(mixed.model, mixed.recipe, "code2code") != task_prefixes(mixed.model, mixed.recipe, "nl2code")


def test_eval_tables_label_every_member():
    from codeseer.eval.report import short_model

    assert short_model("codeseer-code-mini+/opt/models/all-mpnet-base-v2") == "codeseer-code-mini+all-mpnet-base-v2"
    assert short_model("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
