"""What the file ranker reads exactly from an issue or commit text: identifiers, scopes, file names."""

from __future__ import annotations

import pytest

from codeseer.search.evidence import file_mentions, path_word_set, quoted_identifiers, scope_words, words_match


@pytest.mark.parametrize("text,expected", [
    ("Hide `Sentinel.UNSET` values as `None` in `lookup_default()`", ["Sentinel", "UNSET", "None", "lookup_default"]),
    ("Rewrite `_wrap_chunks` in `TextWrapper` to be ANSI-aware", ["_wrap_chunks", "TextWrapper"]),
    ("Added better partial() object collection support", ["partial"]),
    ("fix(res.send): add Content-Length only if Transfer-Encoding is absent", ["res", "send"]),
    ("Fix and accelerate generated __hash__ methods", ["__hash__"]),
    ("make BaseClient's timeout accessible, e.g. via getters", ["BaseClient"]),
    ("Plain words only, Capitalised Too", []),
    ('Traceback:\n  File "src/app/core.py", line 12, in invoke_command\n', ["invoke_command"]),
    ("TypeError: x\n    at Object.handleRequest (lib/router.js:10:5)", ["handleRequest", "TypeError", "Object"]),
])
def test_quoted_identifiers(text, expected):
    assert quoted_identifiers(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("globset: escape `{` and `}` in `escape`", {"globset"}),
    ("ignore/types: add *.rake extension", {"ignore", "type"}),
    ("grep-cli: support files compressed by compress(1)", {"grep", "cli"}),
    ("fix(console): fix selective enabling of highlighting", {"console"}),
    ("perf(res.send)!: avoid a copy", {"res", "send"}),
    ("zsh-completion: added support for filename globbing.", {"zsh", "completion"}),
    ("fix: Don't complete _command on zsh", set()),  # a type, not a scope
    ("BUG: wsgi.error should be TextIO", set()),  # prose, not a module
    ("Traceback: something", set()),
    ("Add support for named tuples to pretty", set()),
])
def test_scope_words(text, expected):
    assert scope_words(text) == expected


def test_file_mentions():
    text = 'see core.py and `src/app/views.py:120`; File "lib/x/router.js", line 3; not v2.0 or e.g. this.'
    assert file_mentions(text) == ["core.py", "src/app/views.py", "lib/x/router.js"]
    assert file_mentions("no files here, just words.") == []


def test_path_words_and_matching():
    words = path_word_set("crates/ignore/src/default_types.rs")
    assert {"crate", "ignore", "src", "default_type", "default", "type"} <= words and "rs" not in words
    assert words_match({"ignore", "type"}, words) == 1.0
    assert words_match({"ignore", "printer"}, words) == 0.5
    assert words_match(set(), words) == 0.0
    assert words_match({"completion"}, path_word_set("zsh_completions.go")) == 1.0  # plural folded
