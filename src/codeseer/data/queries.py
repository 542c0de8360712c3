"""Developer-style search queries written from a doc's first sentence, without an LLM.

Docstrings are not how people search: "Returns the system clipboard contents." is typed as
"python get clipboard contents" or "how to read the clipboard in python". Training on docstring
sentences taught all-MiniLM-L6-v2 to match docstrings and made it worse at web queries, so the
``search`` pairs of ``codeseer data mine`` rewrite the sentence into that register: third-person
verbs become imperatives, "Return True if" becomes "check if", filler goes, articles are dropped
at random, and the language name is added before or after (or left out), sometimes with "how to".
The rewrite is seeded per function, so a mining run is reproducible.
"""

from __future__ import annotations

import random
import re

LANGUAGE_WORDS: dict[str, tuple[str, ...]] = {
    "python": ("python", "py"),
    "javascript": ("javascript", "js", "node"),
    "typescript": ("typescript", "ts"),
    "go": ("go", "golang"),
    "rust": ("rust",),
    "c": ("c",),
    "cpp": ("c++", "cpp"),
    "java": ("java",),
    "csharp": ("c#", "csharp"),
    "ruby": ("ruby",),
    "php": ("php",),
    "kotlin": ("kotlin",),
}

# third person -> imperative for the verbs docstrings start with; others lose a plain trailing "s"
_IRREGULAR = {"does": "do", "has": "have", "is": "check if", "goes": "go", "applies": "apply", "copies": "copy",
              "tries": "try", "modifies": "modify", "specifies": "specify", "queries": "query", "verifies": "verify",
              "identifies": "identify", "notifies": "notify", "carries": "carry", "replies": "reply",
              "returns": "get", "retrieves": "get", "fetches": "fetch", "matches": "match", "searches": "search",
              "pushes": "push", "flushes": "flush", "finishes": "finish", "refreshes": "refresh", "hashes": "hash",
              "caches": "cache", "dispatches": "dispatch", "attaches": "attach", "detaches": "detach",
              "processes": "process", "accesses": "access", "passes": "pass", "compresses": "compress",
              "publishes": "publish", "establishes": "establish", "washes": "wash", "watches": "watch",
              "switches": "switch", "patches": "patch", "touches": "touch", "crashes": "crash", "mixes": "mix",
              "fixes": "fix", "indexes": "index", "prefixes": "prefix", "suffixes": "suffix", "escapes": "escape"}
_NOT_VERBS = frozenset({"this", "its", "is", "was", "as", "has", "plus", "status", "class", "alias", "bytes", "args",
                        "kwargs", "options", "settings", "details", "various", "previous", "always", "sometimes",
                        "helps", "thus", "less", "unless", "series", "analysis", "basis", "axis", "bias"})
_FILLER = re.compile(
    r"^(this (function|method|routine|helper|procedure|func|fn)\s+(will\s+)?|(a |the )?(helper|utility|convenience|"
    r"internal|private|simple)\s+(function|method)?\s*(to|for|that)\s+|(a |the )?(function|method) (to|that|for|which)\s+|"
    r"used to\s+|(we\s+)?(try to|attempt to)\s+)",
    re.I,
)
_TRUE_IF = re.compile(r"^(get|return) (true|whether|a bool(ean)?( indicating)?( whether| if)?)( if| iff| when)?\s+", re.I)
_GET_THE = re.compile(r"^get (the |a |an )?", re.I)
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_MARKUP = re.compile(r"[`*'\"<>{}]|:\w+:")
_KEEP = re.compile(r"[^a-z0-9_+#./\- ]")
_ARTICLES = frozenset({"the", "a", "an", "given", "specified", "provided", "supplied", "current", "passed"})
MAX_WORDS = 12
_HOW_TO_VERBS = frozenset({
    "get", "check", "create", "convert", "remove", "delete", "read", "write", "find", "make", "parse", "set", "add",
    "load", "save", "open", "close", "split", "join", "sort", "count", "compute", "calculate", "build", "generate",
    "format", "print", "send", "download", "upload", "copy", "move", "list", "extract", "replace", "merge", "compare",
    "validate", "encode", "decode", "serialize", "deserialize", "filter", "update", "append", "insert", "start", "stop",
    "run", "call", "wait", "retry", "register", "resolve", "normalize", "strip", "escape", "render", "wrap", "flatten",
    "iterate", "search", "match", "fetch", "return", "raise", "handle", "apply", "truncate", "round", "hash", "sum",
})


def _imperative(word: str) -> str:
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if w in _NOT_VERBS or len(w) < 4 or not w.endswith("s") or w.endswith("ss") or w.endswith("us"):
        return w
    if w.endswith("ies"):
        return w[:-3] + "y"
    if w.endswith(("sses", "shes", "ches", "xes", "zes")):
        return w[:-2]
    return w[:-1]


def search_query(sentence: str, language: str, rng: random.Random) -> str:
    """A developer-style search query for a doc sentence ('' when nothing is left of it)."""
    text = _PARENS.sub(" ", sentence)
    text = _MARKUP.sub(" ", text)
    text = text.strip().rstrip(".!:;,")
    text = _FILLER.sub("", text.strip())
    words = text.split()
    if not words:
        return ""
    words[0] = _imperative(words[0])
    text = " ".join(words).lower()
    if _TRUE_IF.match(text):
        text = _TRUE_IF.sub("check if ", text)
    elif text.startswith("return ") and rng.random() < 0.5:
        text = "get " + text[len("return "):]
    elif text.startswith("get ") and rng.random() < 0.5:
        text = _GET_THE.sub("get ", text)
    text = _KEEP.sub(" ", text)
    words = [w.strip(".-/") for w in text.split()]
    words = [w for w in words if w and not (w in _ARTICLES and rng.random() < 0.7)]
    words = words[:MAX_WORDS]
    if not words:
        return ""
    names = LANGUAGE_WORDS.get(language, (language,))
    lang = names[0] if rng.random() < 0.8 else rng.choice(names)
    roll = rng.random()
    if roll < 0.25 and words[0] in _HOW_TO_VERBS:
        words = ["how", "to", *words]
    roll = rng.random()
    if roll < 0.35:
        words = [lang, *words]
    elif roll < 0.8:
        words = [*words, lang] if rng.random() < 0.7 else [*words, "in", lang]
    return " ".join(words)
