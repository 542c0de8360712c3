"""The model registry and the task list: every recipe complete, prefixes as the cards give them."""

from __future__ import annotations

import json

import pytest

from codeseer.errors import CodeseerError
from codeseer.models.registry import (
    ALL_TASKS,
    FAMILIES,
    POOLINGS,
    REGISTRY,
    ModelRecipe,
    all_recipes,
    find_recipe,
    get_recipe,
)
from codeseer.models.tasks import DOCUMENT, QUERY, TASKS, check_role, get_task

REQUIRED = ("jinaai/jina-code-embeddings-0.5b", "jinaai/jina-code-embeddings-1.5b", "Qodo/Qodo-Embed-1-1.5B",
            "Qodo/Qodo-Embed-1-7B", "Salesforce/SFR-Embedding-Code-400M_R", "Salesforce/SFR-Embedding-Code-2B_R",
            "Kwaipilot/OASIS-code-embedding-1.5B", "Salesforce/codet5p-110m-embedding", "nomic-ai/CodeRankEmbed",
            "minishlab/potion-code-16M", "sentence-transformers/all-MiniLM-L6-v2")


def test_five_tasks_with_two_roles():
    assert list(TASKS) == ["nl2code", "qa", "code2code", "code2nl", "completion"]
    for task in TASKS.values():
        assert task.query_role and task.document_role and task.title
    assert get_task("code2completion").name == "completion"  # jina's spelling
    assert get_task(None).name == "nl2code"
    assert check_role("passage") == DOCUMENT
    with pytest.raises(CodeseerError):
        get_task("summarise")
    with pytest.raises(CodeseerError):
        check_role("answer")


def test_registry_has_every_required_model_with_every_field():
    assert set(REQUIRED) <= set(REGISTRY)
    for r in all_recipes():
        assert r.hub_id.count("/") == 1
        assert r.family in FAMILIES and r.pooling in POOLINGS
        assert r.native_dim > 0 and r.max_seq_length > 0
        assert r.license and isinstance(r.non_commercial, bool) and isinstance(r.trust_remote_code, bool)
        assert r.sources and all(s.startswith("https://") for s in r.sources)
        assert set(r.supported_tasks) <= set(TASKS) and r.supported_tasks
        if r.matryoshka_dims:
            assert list(r.matryoshka_dims) == sorted(set(r.matryoshka_dims))
            assert r.matryoshka_dims[-1] == r.native_dim
        d = r.to_dict()
        assert set(d) >= {"hub_id", "family", "pooling", "native_dim", "matryoshka_dims", "max_seq_length",
                          "prompts", "trust_remote_code", "license", "non_commercial", "sources"}
        json.dumps(d)
        for task in r.supported_tasks:
            q, doc = r.prefix(task, QUERY), r.prefix(task, DOCUMENT)
            if r.asymmetric:  # the card gives different prefixes to queries and documents
                assert q != doc, (r.hub_id, task)
            else:
                assert q == doc == "", (r.hub_id, task)


def test_jina_prefixes_per_task_and_role():
    for hub in ("jinaai/jina-code-embeddings-0.5b", "jinaai/jina-code-embeddings-1.5b"):
        r = get_recipe(hub)
        assert r.supported_tasks == tuple(TASKS)
        assert r.prefix("nl2code", QUERY) == "Find the most relevant code snippet given the following query:\n"
        assert r.prefix("nl2code", DOCUMENT) == "Candidate code snippet:\n"
        assert r.prefix("qa", DOCUMENT) == "Candidate answer:\n"
        assert r.prefix("code2nl", DOCUMENT) == "Candidate comment:\n"
        assert r.prefix("completion", QUERY) == (
            "Find the most relevant completion given the following start of code snippet:\n")
        assert len({r.prefix(t, QUERY) for t in TASKS}) == 5  # one query instruction per task
        assert r.non_commercial and r.pooling == "last" and r.family == "qwen2-decoder"
    assert get_recipe("jinaai/jina-code-embeddings-0.5b").matryoshka_dims == (64, 128, 256, 512, 896)
    assert get_recipe("jinaai/jina-code-embeddings-1.5b").matryoshka_dims == (128, 256, 512, 1024, 1536)


def test_single_instruction_models_and_licences():
    crank = get_recipe("coderankembed")  # alias
    assert crank.hub_id == "nomic-ai/CodeRankEmbed"
    assert crank.prefix("nl2code", QUERY) == "Represent this query for searching relevant code: "
    assert crank.prefix("code2code", DOCUMENT) == "" and crank.pooling == "cls" and crank.trust_remote_code
    sfr = get_recipe("Salesforce/SFR-Embedding-Code-400M_R")
    assert sfr.prefix("qa", QUERY).startswith("Instruct: ") and sfr.prefix("qa", QUERY).endswith("\nQuery: ")
    assert sfr.pooling == "cls" and sfr.native_dim == 1024
    assert {r.hub_id for r in all_recipes() if r.non_commercial} == {
        "jinaai/jina-code-embeddings-0.5b", "jinaai/jina-code-embeddings-1.5b",
        "Salesforce/SFR-Embedding-Code-400M_R", "Salesforce/SFR-Embedding-Code-2B_R"}
    assert get_recipe("Salesforce/codet5p-110m-embedding").pooling == "projection"
    assert get_recipe("minishlab/potion-code-16M").family == "static"
    minilm = get_recipe("sentence-transformers/all-MiniLM-L6-v2")
    assert (minilm.pooling, minilm.native_dim, minilm.prompts) == ("mean", 384, ())
    assert find_recipe("SENTENCE-TRANSFORMERS/ALL-MINILM-L6-V2") is minilm
    assert find_recipe("org/unknown") is None
    with pytest.raises(CodeseerError):
        get_recipe("org/unknown")


def test_recipe_validation():
    from codeseer.models.registry import Prompt

    with pytest.raises(ValueError):
        ModelRecipe(hub_id="a/b", family="rnn", pooling="mean", native_dim=8, matryoshka_dims=(), max_seq_length=8,
                    prompts=(), trust_remote_code=False, license="MIT", non_commercial=False, sources=("https://x",))
    partial = ModelRecipe(hub_id="a/b", family="bert-encoder", pooling="mean", native_dim=8, matryoshka_dims=(),
                          max_seq_length=8, prompts=(Prompt("nl2code", "q: ", "d: "),), trust_remote_code=False,
                          license="MIT", non_commercial=False, sources=("https://x",), asymmetric=True)
    assert partial.supported_tasks == ("nl2code",)
    with pytest.raises(CodeseerError):
        partial.prompt_for("qa")
    everything = ModelRecipe(hub_id="a/c", family="bert-encoder", pooling="mean", native_dim=8, matryoshka_dims=(),
                             max_seq_length=8, prompts=(Prompt(ALL_TASKS, "q: ", ""),), trust_remote_code=False,
                             license="MIT", non_commercial=False, sources=("https://x",), asymmetric=True)
    assert everything.prompt_for("code2nl").query == "q: "
