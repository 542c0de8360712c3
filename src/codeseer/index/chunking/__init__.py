"""Split source files into search chunks: one per function, method or class header.

Why definition-sized chunks: a code-search query ("where do we retry failed uploads")
is answered by a function, not by an arbitrary 60-line window that starts in the middle
of one function and ends in the middle of the next. So for the 13 languages we have
tree-sitter grammars for, chunks follow definitions; markdown / reStructuredText follow
section headings; everything else (and anything that fails to parse) falls back to
overlapping line windows.

Why a package of small modules: those three strategies change for different reasons and
at different rates. Teaching the chunker a new language or fixing a symbol name is an edit
to ``specs`` alone; the tree walk that finds definitions (``definitions``) and the way
definitions become size-limited chunks (``structural``) are language-neutral; headings
(``prose``) know nothing about code; and ``windows`` is the one place that enforces the
size limits, because every strategy falls back to it. ``dispatch`` picks a strategy and
guarantees that ``chunk_source`` never raises; ``record`` is the only type callers see.

Conventions (see also ``Chunk``):

* Per-language knowledge lives in the ``_SPECS`` table (``specs``): which node types are
  functions or containers (class / struct / interface / enum / trait / impl / module), how
  to get their name and body, which nodes merely wrap a definition (decorators, ``export``,
  ``template<>``, ``const f = () => ...``) and which are comments / attributes that
  attach to the definition below them.
* A container yields a ``class`` chunk holding its header (decorators, leading doc
  comment, signature, docstring, fields) up to its first member; every member becomes
  its own chunk, qualified through its parents (``Outer.Inner.method``). Code inside a
  container but between members (fields, properties, initialisers) becomes further
  ``class`` chunks with the container's symbol. Namespaces / packages are not
  containers: they are transparent and never part of a symbol (C++, C#, PHP, Java,
  Kotlin, TypeScript ``namespace``); Ruby ``module`` and Rust ``mod`` blocks are.
* Functions are leaves: nested functions and classes defined inside a function stay in
  the enclosing function's chunk (one chunk per top-level callable; no duplicates).
  Definitions nested in other top-level statements (``if TYPE_CHECKING:``, ``#ifdef``,
  an IIFE, ``describe(() => ...)``) are still found.
* A function is a ``method`` when its symbol is qualified by a type: defined in a
  container, a Go receiver (``Server.Serve``), a Rust ``impl`` (``Parser.parse``, trait
  impls too), a C++ out-of-line name (``Foo::bar`` -> ``Foo.bar``), a Kotlin extension
  receiver (``String.shout``) or a JS ``Foo.prototype.bar = function`` assignment.
* Long functions are split on statement boundaries; parts after the first repeat the
  signature followed by a ``    ...`` line (left out when limits are too small to hold it).
  No chunk is longer than ``max_chars`` characters or ``max_lines`` lines (windows:
  ``window_lines``), and none is blank.
* Top-level code outside definitions becomes ``module`` chunks; a few trailing lines that
  hold only closing brackets / ``end`` are appended to the chunk just above them instead
  of becoming chunks of their own. Every non-blank line ends up in at least one chunk.
* Structural files without any definition (scripts) and unparsable input get windows.
* Files with very long lines on average (minified / generated code) are chunked by
  windows; a single line longer than ``max_chars`` is cut into ``max_chars`` pieces that
  all report that line as their range.
"""

from __future__ import annotations

from .dispatch import chunk_source
from .record import Chunk

__all__ = ["Chunk", "chunk_source"]
