"""Tests for the definition-aware chunker: exact symbols / kinds / line ranges for one
realistic sample per language, the long-function split, line coverage, robustness."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest

try:
    import codeseer.index.chunking  # noqa: F401
except ImportError:  # running from a checkout without an editable install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from codeseer.index.chunking import Chunk, chunk_source
from codeseer.index.languages import (
    STRUCTURAL_LANGUAGES,
    detect_language,
    get_parser,
    is_structural,
)

KINDS = {"function", "method", "class", "section", "window", "module"}


def _src(text: str) -> str:
    return text[1:] if text.startswith("\n") else text


def rows(chunks: list[Chunk]) -> list[tuple[int, int, str, str]]:
    return [(c.start_line, c.end_line, c.kind, c.symbol) for c in chunks]


def check_well_formed(chunks: list[Chunk], text: str, max_lines: int | None = None) -> None:
    """Sorted, valid kinds, ranges in the file, text consistent with the range, and
    every non-blank line of the file inside at least one chunk."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    assert [c.start_line for c in chunks] == sorted(c.start_line for c in chunks)
    covered = set()
    for c in chunks:
        assert c.kind in KINDS, c
        assert 1 <= c.start_line <= c.end_line <= len(lines), c
        assert c.text.strip(), c
        own = "\n".join(lines[c.start_line - 1 : c.end_line])
        if c.start_line == c.end_line and c.text != own:
            assert c.text in own, c  # a slice of an over-long line (or a split part)
        else:
            assert c.text.endswith(own), c  # split parts carry a signature header
        if max_lines is not None:
            assert len(c.text.split("\n")) <= max_lines, c
        covered.update(range(c.start_line, c.end_line + 1))
    missing = [i + 1 for i, line in enumerate(lines) if line.strip() and i + 1 not in covered]
    assert not missing, f"lines not in any chunk: {missing}"


# --------------------------------------------------------------------------- fixtures

PYTHON_SRC = _src(r'''
"""Tiny web app."""
import functools

from .base import App

DEFAULT_PORT = 8080


class Flask(App):
    """The flask object implements a WSGI application."""

    default_config = {"DEBUG": False}

    def __init__(self, name):
        self.name = name

    # Errors raised by views end up here.
    @functools.lru_cache
    def handle_user_exception(self, e):
        """Handle an exception."""
        return self.handle(e)

    class Config:
        def load(self, path):
            return {}


def create_app(name):
    """Build the application."""
    def helper():
        return name
    return Flask(helper())


app = create_app(__name__)

if __name__ == "__main__":
    app.run(port=DEFAULT_PORT)
''')

PYTHON_EXPECTED = [
    (1, 6, 'module', ''),
    (9, 12, 'class', 'Flask'),
    (14, 15, 'method', 'Flask.__init__'),
    (17, 21, 'method', 'Flask.handle_user_exception'),
    (23, 23, 'class', 'Flask.Config'),
    (24, 25, 'method', 'Flask.Config.load'),
    (28, 32, 'function', 'create_app'),
    (35, 38, 'module', ''),
]

JAVA_SRC = _src(r'''
package com.example.users;

import java.util.Map;

/**
 * Looks up users by id.
 */
@Service
public class UserService {
    private final Map<String, User> users;

    public UserService(Map<String, User> users) {
        this.users = users;
    }

    /** Finds a user or returns null. */
    @Override
    public User find(String id) {
        return users.get(id);
    }

    // Cache of recent lookups.
    static class Cache {
        void clear() {
            System.out.println("clear");
        }
    }
}

interface Finder {
    User find(String id);
}
''')

JAVA_EXPECTED = [
    (1, 3, 'module', ''),
    (5, 10, 'class', 'UserService'),
    (12, 14, 'method', 'UserService.UserService'),
    (16, 20, 'method', 'UserService.find'),
    (22, 23, 'class', 'UserService.Cache'),
    (24, 28, 'method', 'UserService.Cache.clear'),
    (30, 32, 'class', 'Finder'),
]

JAVASCRIPT_SRC = _src(r'''
import express from "express";

const PORT = 3000;

/**
 * Handles HTTP requests.
 */
export class Server {
  constructor(app) {
    this.app = app;
  }

  // Start listening.
  listen(port) {
    return this.app.listen(port);
  }
}

export const handler = async (req, res) => {
  res.send("ok");
};

function createServer() {
  return new Server(express());
}

const legacy = function () {
  return null;
};

createServer().listen(PORT);
''')

JAVASCRIPT_EXPECTED = [
    (1, 3, 'module', ''),
    (5, 8, 'class', 'Server'),
    (9, 11, 'method', 'Server.constructor'),
    (13, 17, 'method', 'Server.listen'),
    (19, 21, 'function', 'handler'),
    (23, 25, 'function', 'createServer'),
    (27, 29, 'function', 'legacy'),
    (31, 31, 'module', ''),
]

TYPESCRIPT_SRC = _src(r'''
import { Item } from "./item";

/** Shape of the store. */
export interface StoreOptions {
  capacity: number;
}

export type Key = string | number;

@Injectable()
export class Store<T> {
  private items = new Map<Key, T>();

  /** Add one item. */
  add(key: Key, item: T): void {
    this.items.set(key, item);
  }

  get size(): number {
    return this.items.size;
  }
}

export function makeStore(): Store<Item> {
  return new Store<Item>();
}

export const isEmpty = (s: Store<Item>): boolean => s.size === 0;
''')

TYPESCRIPT_EXPECTED = [
    (1, 1, 'module', ''),
    (3, 6, 'class', 'StoreOptions'),
    (8, 8, 'class', 'Key'),
    (10, 12, 'class', 'Store'),
    (14, 17, 'method', 'Store.add'),
    (19, 22, 'method', 'Store.size'),
    (24, 26, 'function', 'makeStore'),
    (28, 28, 'function', 'isEmpty'),
]

TSX_SRC = _src(r'''
import React from "react";

interface Props {
  label: string;
  onClick: () => void;
}

/** A clickable button. */
export function Button({ label, onClick }: Props) {
  return <button onClick={onClick}>{label}</button>;
}

export class Counter extends React.Component<Props> {
  state = { n: 0 };

  increment = () => {
    this.setState({ n: this.state.n + 1 });
  };

  render() {
    return <div>{this.state.n}</div>;
  }
}

export default Button;
''')

TSX_EXPECTED = [
    (1, 1, 'module', ''),
    (3, 6, 'class', 'Props'),
    (8, 11, 'function', 'Button'),
    (13, 14, 'class', 'Counter'),
    (16, 18, 'method', 'Counter.increment'),
    (20, 23, 'method', 'Counter.render'),
    (25, 25, 'module', ''),
]

GO_SRC = _src(r'''
package server

import (
	"fmt"
	"net/http"
)

// Server wraps an HTTP server.
type Server struct {
	Addr string
}

// Handler handles requests.
type Handler interface {
	Handle(w http.ResponseWriter)
}

// Serve starts the server.
func (s *Server) Serve() error {
	fmt.Println("serving", s.Addr)
	return http.ListenAndServe(s.Addr, nil)
}

func (s Server) String() string {
	return s.Addr
}

// New creates a server.
func New(addr string) *Server {
	return &Server{Addr: addr}
}

var defaultServer = New(":8080")
''')

GO_EXPECTED = [
    (1, 6, 'module', ''),
    (8, 11, 'class', 'Server'),
    (13, 16, 'class', 'Handler'),
    (18, 22, 'method', 'Server.Serve'),
    (24, 26, 'method', 'Server.String'),
    (28, 31, 'function', 'New'),
    (33, 33, 'module', ''),
]

RUST_SRC = _src(r'''
use std::fmt;

/// A tiny parser.
#[derive(Debug, Clone)]
pub struct Parser {
    pos: usize,
}

impl Parser {
    /// Create a parser.
    pub fn new() -> Self {
        Parser { pos: 0 }
    }

    pub fn parse(&mut self, input: &str) -> usize {
        self.pos = input.len();
        self.pos
    }
}

impl fmt::Display for Parser {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Parser({})", self.pos)
    }
}

pub trait Visitor {
    fn visit(&self, node: &str);
}

// Entry point.
fn main() {
    let mut p = Parser::new();
    println!("{}", p.parse("abc"));
}
''')

RUST_EXPECTED = [
    (1, 1, 'module', ''),
    (3, 7, 'class', 'Parser'),
    (9, 9, 'class', 'Parser'),
    (10, 13, 'method', 'Parser.new'),
    (15, 19, 'method', 'Parser.parse'),
    (21, 21, 'class', 'Parser'),
    (22, 25, 'method', 'Parser.fmt'),
    (27, 29, 'class', 'Visitor'),
    (31, 35, 'function', 'main'),
]

C_SRC = _src(r'''
#include <stdlib.h>

#define MAX_ITEMS 64

/* A singly linked list node. */
typedef struct node {
    int value;
    struct node *next;
} node_t;

struct list {
    node_t *head;
};

// Push a value to the front.
static node_t *push(node_t *head, int value)
{
    node_t *n = malloc(sizeof(node_t));
    n->value = value;
    n->next = head;
    return n;
}

int length(const node_t *head) {
    int count = 0;
    for (; head; head = head->next) count++;
    return count;
}
''')

C_EXPECTED = [
    (1, 3, 'module', ''),
    (5, 9, 'class', 'node'),
    (11, 13, 'class', 'list'),
    (15, 22, 'function', 'push'),
    (24, 28, 'function', 'length'),
]

CPP_SRC = _src(r'''
#include <string>

namespace ui {

/// A drawable widget.
class Widget {
public:
    explicit Widget(std::string name);

    // Width in pixels.
    int width() const {
        return width_;
    }

private:
    std::string name_;
    int width_ = 0;
};

Widget::Widget(std::string name) : name_(std::move(name)) {}

template <typename T>
T clamp(T v, T lo, T hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

}  // namespace ui

int main() {
    ui::Widget w("x");
    return w.width();
}
''')

CPP_EXPECTED = [
    (1, 3, 'module', ''),
    (5, 8, 'class', 'Widget'),
    (10, 13, 'method', 'Widget.width'),
    (15, 18, 'class', 'Widget'),
    (20, 20, 'method', 'Widget.Widget'),
    (22, 27, 'function', 'clamp'),
    (29, 32, 'function', 'main'),
]

CSHARP_SRC = _src(r'''
using System.Collections.Generic;

namespace App.Data
{
    /// <summary>Stores entities.</summary>
    [Serializable]
    public class Repo<T>
    {
        private readonly List<T> _items = new List<T>();

        public int Count => _items.Count;

        /// <summary>Adds an item.</summary>
        public void Add(T item)
        {
            _items.Add(item);
        }

        public struct Entry
        {
            public T Value;
        }
    }

    public static class Extensions
    {
        // Shortcut.
        public static bool IsEmpty<T>(this Repo<T> r) => r.Count == 0;
    }
}
''')

CSHARP_EXPECTED = [
    (1, 4, 'module', ''),
    (5, 11, 'class', 'Repo'),
    (13, 17, 'method', 'Repo.Add'),
    (19, 23, 'class', 'Repo.Entry'),
    (25, 26, 'class', 'Extensions'),
    (27, 30, 'method', 'Extensions.IsEmpty'),
]

PHP_SRC = _src(r'''
<?php

namespace App\Http\Controllers;

use App\Models\User;

/**
 * Handles user pages.
 */
class UserController extends Controller
{
    private $users;

    public function __construct($users)
    {
        $this->users = $users;
    }

    /** Show one user. */
    public function show(int $id): string
    {
        return view('user', ['user' => $this->users->find($id)]);
    }
}

// Format a name.
function format_name(string $name): string
{
    return ucfirst($name);
}

$controller = new UserController([]);
''')

PHP_EXPECTED = [
    (1, 5, 'module', ''),
    (7, 12, 'class', 'UserController'),
    (14, 17, 'method', 'UserController.__construct'),
    (19, 24, 'method', 'UserController.show'),
    (26, 30, 'function', 'format_name'),
    (32, 32, 'module', ''),
]

RUBY_SRC = _src(r'''
require "json"

# Authentication helpers.
module Auth
  # A user account.
  class User
    attr_reader :name

    # Find a user by id.
    def self.find(id)
      new("user#{id}")
    end

    def initialize(name)
      @name = name
    end

    def to_json(*args)
      { name: @name }.to_json(*args)
    end
  end
end

# Greets someone.
def greet(user)
  "Hello, #{user.name}"
end

puts greet(Auth::User.find(1))
''')

RUBY_EXPECTED = [
    (1, 1, 'module', ''),
    (3, 4, 'class', 'Auth'),
    (5, 7, 'class', 'Auth.User'),
    (9, 12, 'method', 'Auth.User.find'),
    (14, 16, 'method', 'Auth.User.initialize'),
    (18, 22, 'method', 'Auth.User.to_json'),
    (24, 27, 'function', 'greet'),
    (29, 29, 'module', ''),
]

KOTLIN_SRC = _src(r'''
package com.example.data

import kotlin.collections.mutableMapOf

/**
 * In-memory repository.
 */
class UserRepo(private val prefix: String) {
    private val cache = mutableMapOf<String, String>()

    // Look up one entry.
    fun find(id: String): String? {
        return cache[prefix + id]
    }

    companion object {
        fun create(): UserRepo {
            return UserRepo("u")
        }
    }
}

object Registry {
    fun register(repo: UserRepo) {
        println(repo)
    }
}

/** Shout it. */
fun String.shout(): String = uppercase()

fun main() {
    println(UserRepo.create().find("1"))
}
''')

KOTLIN_EXPECTED = [
    (1, 3, 'module', ''),
    (5, 9, 'class', 'UserRepo'),
    (11, 14, 'method', 'UserRepo.find'),
    (16, 16, 'class', 'UserRepo'),
    (17, 21, 'method', 'UserRepo.create'),
    (23, 23, 'class', 'Registry'),
    (24, 27, 'method', 'Registry.register'),
    (29, 30, 'method', 'String.shout'),
    (32, 34, 'function', 'main'),
]

MARKDOWN_SRC = _src(r'''
---
title: Demo
# not a heading
---

Intro text before any heading.

# Project

Some words.

## Install

```bash
# not a heading either
pip install x
```

### From source
Clone it.

Usage
-----

Run `x`.

Title Two
=========

- item
---

#### Deep ####
text
''')

MARKDOWN_EXPECTED = [
    (1, 6, 'section', ''),
    (8, 10, 'section', 'Project'),
    (12, 17, 'section', 'Project > Install'),
    (19, 20, 'section', 'Project > Install > From source'),
    (22, 25, 'section', 'Project > Usage'),
    (27, 31, 'section', 'Title Two'),
    (33, 34, 'section', 'Title Two > Deep'),
]

RST_SRC = _src(r'''
=======
 Title
=======

Preamble? no, this belongs to Title.

Install
=======

Text.

From source
-----------

Clone::

    git clone x
    Not a title
    -----------

Usage
=====

Run it.

----

Advanced
--------
More.
''')

RST_EXPECTED = [
    (1, 5, 'section', 'Title'),
    (7, 10, 'section', 'Title > Install'),
    (12, 19, 'section', 'Title > Install > From source'),
    (21, 26, 'section', 'Title > Usage'),
    (28, 30, 'section', 'Title > Usage > Advanced'),
]

FIXTURES = {
    "python": ("src/app.py", PYTHON_SRC, PYTHON_EXPECTED),
    "java": ("src/UserService.java", JAVA_SRC, JAVA_EXPECTED),
    "javascript": ("web/server.js", JAVASCRIPT_SRC, JAVASCRIPT_EXPECTED),
    "typescript": ("web/store.ts", TYPESCRIPT_SRC, TYPESCRIPT_EXPECTED),
    "tsx": ("web/Button.tsx", TSX_SRC, TSX_EXPECTED),
    "go": ("server/server.go", GO_SRC, GO_EXPECTED),
    "rust": ("src/parser.rs", RUST_SRC, RUST_EXPECTED),
    "c": ("lib/list.c", C_SRC, C_EXPECTED),
    "cpp": ("lib/widget.cpp", CPP_SRC, CPP_EXPECTED),
    "csharp": ("App/Repo.cs", CSHARP_SRC, CSHARP_EXPECTED),
    "php": ("app/UserController.php", PHP_SRC, PHP_EXPECTED),
    "ruby": ("lib/user.rb", RUBY_SRC, RUBY_EXPECTED),
    "kotlin": ("app/Repo.kt", KOTLIN_SRC, KOTLIN_EXPECTED),
    "markdown": ("docs/guide.md", MARKDOWN_SRC, MARKDOWN_EXPECTED),
    "rst": ("docs/guide.rst", RST_SRC, RST_EXPECTED),
}


# --------------------------------------------------------------------------- per language


@pytest.mark.parametrize("language", sorted(FIXTURES))
def test_fixture_symbols_kinds_and_ranges(language: str) -> None:
    path, text, expected = FIXTURES[language]
    chunks = chunk_source(path, text)
    assert rows(chunks) == expected
    assert {c.language for c in chunks} == {language}
    assert {c.path for c in chunks} == {path}


@pytest.mark.parametrize("language", sorted(FIXTURES))
def test_fixture_every_nonblank_line_covered(language: str) -> None:
    path, text, _ = FIXTURES[language]
    check_well_formed(chunk_source(path, text), text)
    # an explicit language gives the same result as detection from the path
    assert chunk_source("no-extension", text, language) == [
        Chunk("no-extension", c.language, c.start_line, c.end_line, c.symbol, c.kind, c.text)
        for c in chunk_source(path, text)
    ]


def test_all_structural_languages_have_a_fixture() -> None:
    assert STRUCTURAL_LANGUAGES <= set(FIXTURES)


def test_python_chunk_text_includes_comment_and_decorators() -> None:
    chunks = {c.symbol: c for c in chunk_source("app.py", PYTHON_SRC)}
    handler = chunks["Flask.handle_user_exception"]
    assert handler.text.splitlines()[:3] == [
        "    # Errors raised by views end up here.",
        "    @functools.lru_cache",
        "    def handle_user_exception(self, e):",
    ]
    # the class chunk is the header: signature, docstring, class attributes; no methods
    assert chunks["Flask"].text.startswith("class Flask(App):\n")
    assert "default_config" in chunks["Flask"].text
    assert "def " not in chunks["Flask"].text
    # nested functions stay inside their parent
    assert "def helper():" in chunks["create_app"].text
    module = [c for c in chunk_source("app.py", PYTHON_SRC) if c.kind == "module"]
    assert any('if __name__ == "__main__":' in c.text for c in module)
    assert any("app = create_app(__name__)" in c.text for c in module)


def test_doc_comments_are_part_of_the_definition() -> None:
    java = {c.symbol: c for c in chunk_source("A.java", JAVA_SRC)}
    assert java["UserService"].text.startswith("/**\n * Looks up users by id.\n */\n@Service\n")
    assert java["UserService.find"].text.startswith("    /** Finds a user or returns null. */\n    @Override")
    rust = [c for c in chunk_source("p.rs", RUST_SRC) if c.symbol == "Parser"]
    # the struct, then one header chunk per impl block (trait impls qualify by type too)
    assert [c.text.splitlines()[0] for c in rust[1:]] == ["impl Parser {", "impl fmt::Display for Parser {"]
    assert rust[0].text.startswith("/// A tiny parser.\n#[derive(Debug, Clone)]\n")
    go = {c.symbol: c for c in chunk_source("s.go", GO_SRC)}
    assert go["Server.Serve"].text.startswith("// Serve starts the server.\nfunc (s *Server)")


# --------------------------------------------------------------------------- docs


def test_markdown_headings_ignore_code_fences_and_front_matter() -> None:
    sections = {c.symbol: c for c in chunk_source("guide.md", MARKDOWN_SRC)}
    assert "pip install x" in sections["Project > Install"].text
    assert sections[""].text.startswith("---\ntitle: Demo")
    assert sections["Title Two"].text.endswith("- item\n---")  # thematic break, not a heading


def test_long_markdown_section_is_windowed() -> None:
    text = "# Big\n" + "".join(f"line {i}\n" for i in range(300)) + "## Small\nend\n"
    chunks = chunk_source("big.md", text, window_lines=60, window_overlap=10)
    big = [c for c in chunks if c.symbol == "Big"]
    assert len(big) > 2 and all(c.kind == "section" for c in big)
    assert all(c.end_line - c.start_line + 1 <= 60 for c in big)
    assert rows(chunks)[-1] == (302, 303, "section", "Big > Small")
    check_well_formed(chunks, text)


# --------------------------------------------------------------------------- long functions


def _long_python(n_head: int = 50, n_if: int = 60) -> str:
    lines = ["import os", "", "", "@decorator", "def big(a,", "        b):", '    """Doc."""']
    lines += [f"    x{i} = a + {i}" for i in range(n_head)]
    lines.append("    if a:")
    lines += [f"        y{i} = b * {i}" for i in range(n_if)]
    lines += ["    return a", "", "", "def small():", "    return 1", ""]
    return "\n".join(lines)


def _check_split(parts: list[Chunk], text: str, first: int, last: int, header: str, max_lines: int) -> None:
    lines = text.split("\n")
    assert len(parts) > 1
    assert len({(c.symbol, c.kind) for c in parts}) == 1
    assert parts[0].start_line == first and parts[-1].end_line == last
    for prev, cur in zip(parts, parts[1:]):
        assert cur.start_line == prev.end_line + 1  # contiguous, no overlap
    for i, part in enumerate(parts):
        own = "\n".join(lines[part.start_line - 1 : part.end_line])
        assert len(part.text.split("\n")) <= max_lines
        if i == 0:
            assert part.text == own
        else:
            assert part.text == header + "\n    ...\n" + own


def test_long_python_function_is_split_on_statements() -> None:
    text = _long_python()
    chunks = chunk_source("big.py", text, max_lines=40)
    check_well_formed(chunks, text, max_lines=40)
    parts = [c for c in chunks if c.symbol == "big"]
    # starts at the decorator, signature (both lines) repeated on later parts
    _check_split(parts, text, 4, 119, "def big(a,\n        b):", 40)
    assert all(c.kind == "function" for c in parts)
    assert rows(chunks)[-1] == (122, 123, "function", "small")
    # parts start on statement boundaries
    lines = text.split("\n")
    for part in parts[1:]:
        assert lines[part.start_line - 1].lstrip().startswith(("x", "y", "if", "return"))


def test_long_java_method_is_split_and_keeps_method_kind() -> None:
    body = "".join(f"        total += compute({i});\n" for i in range(150))
    text = (
        "class Calc {\n"
        "    /** Sum everything. */\n"
        "    public int sum(int seed) {\n"
        "        int total = seed;\n" + body + "        return total;\n"
        "    }\n"
        "}\n"
    )
    chunks = chunk_source("Calc.java", text, max_lines=50)
    check_well_formed(chunks, text, max_lines=50)
    parts = [c for c in chunks if c.symbol == "Calc.sum"]
    assert all(c.kind == "method" for c in parts)
    _check_split(parts, text, 2, 157, "    public int sum(int seed) {", 50)


def test_single_huge_statement_is_cut_into_line_windows() -> None:
    items = "".join(f"        'key{i}': {i},\n" for i in range(200))
    text = "def table():\n    return {\n" + items + "    }\n"
    chunks = chunk_source("t.py", text, max_lines=30)
    check_well_formed(chunks, text, max_lines=30)
    _check_split(chunks, text, 1, 203, "def table():", 30)


def test_long_lines_split_by_chars() -> None:
    body = "".join(f"    v{i} = '{'x' * 190}'\n" for i in range(40))
    text = "def wide():\n" + body + "    return 1\n"
    chunks = chunk_source("w.py", text, max_chars=2000)
    check_well_formed(chunks, text)
    assert len(chunks) > 3 and {c.symbol for c in chunks} == {"wide"}
    assert all(len(c.text) <= 2000 for c in chunks)


# --------------------------------------------------------------------------- fallback


def test_unknown_language_uses_line_windows() -> None:
    text = "".join(f"row {i}\n" for i in range(1, 151))
    chunks = chunk_source("data.unknownext", text)
    assert rows(chunks) == [(1, 60, "window", ""), (51, 110, "window", ""), (101, 150, "window", "")]
    assert chunks[0].text == "\n".join(f"row {i}" for i in range(1, 61))
    check_well_formed(chunks, text)


def test_plain_text_languages_use_windows_and_skip_blank_windows() -> None:
    text = "a = 1\n" * 10 + "\n" * 130 + "b = 2\n" * 10
    chunks = chunk_source("conf/settings.toml", text, window_lines=60, window_overlap=10)
    assert {c.language for c in chunks} == {"toml"}
    assert rows(chunks) == [(1, 10, "window", ""), (141, 150, "window", "")]


def test_structural_file_without_definitions_uses_windows() -> None:
    text = "import sys\n\nprint(sys.argv)\nx = 1\n"
    assert rows(chunk_source("script.py", text)) == [(1, 4, "window", "")]


def test_syntax_errors_keep_what_parses() -> None:
    text = (
        "import os\n\ndef ok():\n    return 1\n\n)))(((  ==\n\n"
        "def also_ok(:\n    pass\n\nclass K:\n    def m(self):\n        return 3\n"
    )
    chunks = chunk_source("broken.py", text)
    assert {"ok", "K", "K.m"} <= {c.symbol for c in chunks}
    check_well_formed(chunks, text)


# --------------------------------------------------------------------------- robustness

_RNG = random.Random(1234)
NASTY = {
    "random_bytes": bytes(_RNG.randrange(256) for _ in range(5000)).decode("latin-1"),
    "nul_bytes": "def f():\n    return '\x00'\n\x00\x00\x00\nclass A:\n  pass\n",
    "huge_line": "x = '" + "a" * 200_000 + "'\n",
    "deep_brackets": "x = " + "[" * 500 + "]" * 500 + "\n",
    "deep_braces": "int f() {" + "{" * 500 + "}" * 500 + "}\n",
    "deep_classes": "".join("    " * i + f"class C{i}:\n" for i in range(120)) + "    " * 120 + "pass\n",
    "unbalanced": "{" * 500 + "(" * 500 + "def x(:\n" + "end\n" * 50,
    "crlf": "def f():\r\n    return 1\r\n\r\nclass A:\r\n    def m(self):\r\n        pass\r\n",
    "unicode": "def f():\n    return 'héllo 日本'\n\n# ö\nclass Ä:\n    def ö(self): pass\n",
    "surrogates": "def f():\n    return '\udcff\ud800'\n",
}


@pytest.mark.parametrize("case", sorted(NASTY))
def test_never_raises_on_nasty_input(case: str) -> None:
    text = NASTY[case]
    for language in sorted(STRUCTURAL_LANGUAGES) + ["markdown", "rst", "text", None]:
        chunks = chunk_source(f"nasty.{case}", text, language, max_chars=6000)
        check_well_formed(chunks, text)
        assert all(len(c.text) <= 6000 for c in chunks)


def test_empty_and_blank_input() -> None:
    for language in sorted(STRUCTURAL_LANGUAGES) + ["markdown", "rst", None]:
        assert chunk_source("e.py", "", language) == []
        assert chunk_source("e.py", " \n\n\t\n", language) == []


def test_huge_single_line_is_cut_by_chars() -> None:
    rng = random.Random(7)
    text = "var a = '" + "".join(rng.choice("abcdef") for _ in range(200_000)) + "';"
    chunks = chunk_source("min.js", text)
    assert len(chunks) >= 200_000 // 6000
    assert all((c.start_line, c.end_line, c.kind) == (1, 1, "window") for c in chunks)
    assert "".join(c.text for c in chunks) == text
    # identical pieces (same range, same text) are emitted once: ids downstream stay unique
    same = chunk_source("min.js", "x = '" + "b" * 200_000 + "'")
    assert len(same) == len(set(same)) < 10


def test_fixtures_are_fast() -> None:
    start = time.perf_counter()
    for path, text, _ in FIXTURES.values():
        chunk_source(path, text * 20)
    assert time.perf_counter() - start < 2.0


# --------------------------------------------------------------------------- languages


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a/b.py", "python"), ("stubs/x.pyi", "python"), ("A.java", "java"),
        ("x.js", "javascript"), ("x.mjs", "javascript"), ("x.cjs", "javascript"),
        ("x.jsx", "javascript"), ("x.ts", "typescript"), ("x.tsx", "tsx"), ("x.go", "go"),
        ("x.rs", "rust"), ("x.c", "c"), ("x.h", "c"), ("x.hpp", "cpp"), ("x.cc", "cpp"),
        ("x.cxx", "cpp"), ("x.hh", "cpp"), ("x.cs", "csharp"), ("x.php", "php"),
        ("x.rb", "ruby"), ("x.kt", "kotlin"), ("build.gradle.kts", "kotlin"),
        ("README.md", "markdown"), ("x.markdown", "markdown"), ("index.rst", "rst"),
        ("notes.txt", "text"), ("pyproject.toml", "toml"), ("ci.yml", "yaml"),
        ("c.yaml", "yaml"), ("p.json", "json"), ("setup.cfg", "ini"), ("run.sh", "shell"),
        ("q.sql", "sql"), ("i.html", "html"), ("s.css", "css"), ("s.scss", "scss"),
        ("App.swift", "swift"), ("x.scala", "scala"), ("x.lua", "lua"), ("x.R", "r"),
        ("x.ex", "elixir"), ("x.dart", "dart"), ("C.vue", "vue"), ("x.proto", "proto"),
        ("Makefile", "make"), ("docker/Dockerfile", "dockerfile"), ("CMakeLists.txt", "cmake"),
        ("A.PY", "python"), ("img.png", None), ("lib.so", None), ("noext", None), ("", None),
    ],
)
def test_detect_language(path: str, language: str | None) -> None:
    assert detect_language(path) == language


def test_header_sniffing_and_structural_flags() -> None:
    assert detect_language("x.h", "namespace foo {\nclass A {};\n}\n") == "cpp"
    assert detect_language("x.h", "struct a { int b; };\nint f(void);\n") == "c"
    # chunk_source re-checks headers the walker labelled "c" from the name alone
    header = "namespace ui {\nclass Widget {\n public:\n  int width() const {\n    return 1;\n  }\n};\n}\n"
    chunks = chunk_source("include/widget.h", header, "c")
    assert {c.language for c in chunks} == {"cpp"}
    assert ("Widget.width", "method") in {(c.symbol, c.kind) for c in chunks}
    assert is_structural("python") and is_structural("kotlin")
    assert not is_structural("markdown") and not is_structural("toml") and not is_structural(None)
    assert STRUCTURAL_LANGUAGES == {
        "python", "java", "javascript", "typescript", "tsx", "go", "rust",
        "c", "cpp", "csharp", "php", "ruby", "kotlin",
    }


@pytest.mark.parametrize("language", sorted(STRUCTURAL_LANGUAGES))
def test_get_parser_is_cached_and_parses(language: str) -> None:
    parser = get_parser(language)
    assert get_parser(language) is parser
    tree = parser.parse(FIXTURES[language][1].encode())
    assert tree.root_node.child_count > 0
    assert not tree.root_node.has_error


def test_get_parser_rejects_unknown_language() -> None:
    with pytest.raises(ValueError):
        get_parser("cobol")
