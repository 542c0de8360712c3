"""The five retrieval tasks codeseer knows, each with a query role and a document role.

A task says what the two sides of a search are, so that a model trained with task-specific
instructions (jina-code-embeddings, CodeRankEmbed, SFR-Embedding-Code, ...) gets the prefix it was
trained with on each side. Models without instructions ignore the task.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from codeseer.errors import CodeseerError

QUERY = "query"
DOCUMENT = "document"
ROLES: tuple[str, ...] = (QUERY, DOCUMENT)


@dataclass(frozen=True)
class Task:
    """A retrieval task: what a query looks like and what the documents it should find look like."""

    name: str
    title: str
    query_role: str  # what is embedded with the query prefix
    document_role: str  # what is embedded with the document prefix
    example: str

    def to_dict(self) -> dict:
        return asdict(self)


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("nl2code", "natural language to code", "a question or description in plain language",
             "a code snippet", "'read a csv file' -> pandas.read_csv(...)"),
        Task("qa", "technical question answering", "a technical question",
             "an answer (prose and code)", "a Stack Overflow question -> its accepted answer"),
        Task("code2code", "code to similar code", "a code snippet",
             "an equivalent code snippet (possibly another language)", "a Java method -> the same logic in Python"),
        Task("code2nl", "code to its description", "a code snippet",
             "a comment or docstring describing it", "a function -> its docstring"),
        Task("completion", "code to its continuation", "the start of a code snippet",
             "the rest of it", "a function signature -> the body"),
    )
}

DEFAULT_TASK = "nl2code"
# The task each retrieval app asks its query in.
TASK_SEARCH = "nl2code"  # search, locate, context
TASK_SIMILAR = "code2code"  # similar
TASK_DOCS = "code2nl"  # docs, stale-docs

# Other spellings people (and model cards) use for the same task.
_ALIASES = {
    "code2completion": "completion",
    "code-completion": "completion",
    "text2code": "nl2code",
    "nl-to-code": "nl2code",
    "techqa": "qa",
    "tech-qa": "qa",
}


def get_task(name: str | None) -> Task:
    """Look a task up by name (case-insensitive, common aliases accepted)."""
    if name is None:
        return TASKS[DEFAULT_TASK]
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return TASKS[key]
    except KeyError:
        raise CodeseerError(f"unknown task {name!r}: choose one of {', '.join(TASKS)}") from None


def check_role(role: str) -> str:
    role = role.strip().lower()
    if role in ("passage", "doc", "corpus"):
        role = DOCUMENT
    if role not in ROLES:
        raise CodeseerError(f"unknown role {role!r}: choose query or document")
    return role
