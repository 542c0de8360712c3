"""The file ranker behind `locate` and `eval-repo`: kinds in the index, each feature on small repos,
the failure mode of type declarations, bundles and test specs, and upgrading an older index."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from codeseer.apps.locate import locate
from codeseer.errors import CodeseerError
from codeseer.index.indexer import index_repository
from codeseer.index.store import FILE_LEVEL_COLUMNS, IndexStore
from codeseer.search.files import FEATURES, FileRanker, RankerWeights, load_weights
from codeseer.search.searcher import Searcher

from conftest import run_cli, write_files

ROUTER = '''
    'use strict'

    module.exports = Router

    function Router (options) {
      this.stack = []
      this.params = {}
    }

    Router.prototype.handle = function handle (req, res, done) {
      var match = matchLayer(this.stack, req.url)
      if (!match) return done()
      req.params = mergeParams(match.params, req.params)
      return match.handle(req, res, done)
    }

    function mergeParams (params, parent) {
      return Object.assign({}, parent, params)
    }
    '''
JS_REPO = {
    "lib/router.js": ROUTER,
    "lib/view.js": '''
        module.exports = View

        function View (name, options) {
          this.name = name
          this.engine = options.engines[this.ext]
        }

        View.prototype.render = function render (options, callback) {
          this.engine(this.path, options, callback)
        }
        ''',
    # Type declarations repeat every name of the router, and more often.
    "index.d.ts": '''
        export interface RouterOptions { mergeParams?: boolean }
        /** Router handle: match the route, merge route params, handle the request. */
        export declare class Router {
          handle(req: Request, res: Response, done: () => void): void
          params: RouteParams
        }
        /** Route params of the router handle, merged route params. */
        export type RouteParams = { [param: string]: string }
        export declare function mergeParams(params: RouteParams, parent: RouteParams): RouteParams
        ''',
    "test/router.spec.js": '''
        var Router = require('../lib/router')

        describe('Router handle', function () {
          it('should merge route params', function () {
            var router = new Router()
            router.handle({ url: '/' }, {}, function () {})
            assert.deepEqual(router.params, {})
          })
          it('should keep route params of the parent route', function () {
            var router = new Router({ mergeParams: true })
            router.handle({ url: '/a' }, {}, function () {})
          })
        })
        ''',
    # A bundle in dist/ repeats the source: it is not indexed at all.
    "dist/router.js": ROUTER,
}

PY_REPO = {
    "printer/standard.py": '''
        def write_line(sink, line):
            """Write one line of output to the sink."""
            sink.write(line + "\\n")


        def multiline_mode(lines):
            return "\\n".join(lines)
        ''',
    "printer/util.py": '''
        def replace_all(line, matches, replacement):
            """Substitute every match of the line by the replacement."""
            for match in matches:
                line = line.replace(match, replacement)
            return line
        ''',
    # BM25 favours this file for the scoped commit below: it says replacement and multiline more.
    "globset/glob.py": '''
        def translate(pattern):
            """Replacement of glob syntax by a regex; multiline mode off; a duplicative replacement is fine."""
            replacement = pattern.replace("*", ".*")
            multiline = False
            return replacement, multiline


        def escape_replacement(replacement):
            """Escape a replacement in multiline mode: duplicative braces."""
            return replacement.replace("{", "{{")
        ''',
    "config/defaults.py": '''
        UNSET = object()


        def lookup_default(ctx, name):
            """The default value of a parameter, or UNSET."""
            return ctx.defaults.get(name, UNSET)
        ''',
    # Says "default values" and "unset" far more often, but only calls the function.
    "core/params.py": '''
        from config.defaults import lookup_default


        class Parameter:
            """A parameter with default values; unset default values show as unset values."""

            def get_default(self, ctx):
                value = lookup_default(ctx, self.name)
                return None if value is None else value  # unset default values hidden: default values

            def show_default_values(self):
                return "default values: unset default values are hidden values"
        ''',
}


def no_dense(weights: RankerWeights) -> RankerWeights:
    """The shipped weights without the dense features: the tiny test model's cosines are noise."""
    return RankerWeights({**weights.weights, "dense_best": 0.0, "dense_top3": 0.0})


@pytest.fixture(scope="module")
def js_index(tmp_path_factory, tiny_model_dir):
    repo = write_files(tmp_path_factory.mktemp("js") / "app", JS_REPO)
    report = index_repository(repo, model=str(tiny_model_dir))
    return repo, report


@pytest.fixture(scope="module")
def py_index(tmp_path_factory, tiny_model_dir):
    repo = write_files(tmp_path_factory.mktemp("py") / "tool", PY_REPO)
    index_repository(repo, model=str(tiny_model_dir))
    return repo


def test_kinds_are_stored_and_build_output_is_not_indexed(js_index):
    repo, report = js_index
    searcher = Searcher(IndexStore(repo / ".codeseer"))
    files = {r["path"]: r for r in searcher.files.to_arrow().to_pylist()}
    assert "dist/router.js" not in files and report.skipped.get("build output") == 1
    assert {p: r["file_kind"] for p, r in files.items()} == {
        "lib/router.js": "source", "lib/view.js": "source", "index.d.ts": "types", "test/router.spec.js": "test"}
    router = files["lib/router.js"]
    assert {"Router.handle", "handle", "mergeParams"} <= set(router["symbols"])
    assert router["path_text"].split() == ["lib", "router", "js"]
    assert "Router.prototype.handle = function handle" in router["search_text"]
    kinds = {r["path"]: r["file_kind"] for r in searcher.chunks.search().select(["path", "file_kind"]).limit(None)
             .to_arrow().to_pylist()}
    assert kinds["test/router.spec.js"] == "test" and kinds["lib/router.js"] == "source"
    # --kind filters search hits, and hits say their file's kind
    hits = searcher.search("router handle params", k=20, file_kinds=["test"])
    assert hits and {h.path for h in hits} == {"test/router.spec.js"} and {h.file_kind for h in hits} == {"test"}
    assert "file_kind" in hits[0].to_dict()


def test_type_declarations_bundles_and_specs_do_not_outrank_the_source(js_index):
    """The hidden JavaScript repository's failure: index.d.ts, dist/ and test specs above lib/."""
    repo, _ = js_index
    searcher = Searcher(IndexStore(repo / ".codeseer"))
    text = "Router handle loses the route params of the parent route"
    everything = searcher.file_ranker.candidates(text, kinds=["source", "types", "test"])
    bm25 = dict(zip([p for _, p in everything.keys], everything.features[:, FEATURES.index("bm25")]))
    assert bm25["index.d.ts"] > bm25["lib/router.js"] or bm25["test/router.spec.js"] > bm25["lib/router.js"]

    result = locate(searcher, text, k=5)
    assert [f.path for f in result.files] == ["lib/router.js", "lib/view.js"]
    assert result.files[0].functions[0].symbol in ("Router.handle", "Router", "mergeParams")
    widened = locate(searcher, text, k=5, include=["types", "test"])
    assert {f.path for f in widened.files} == {"lib/router.js", "lib/view.js", "index.d.ts", "test/router.spec.js"}
    assert {f.kind for f in widened.files} == {"source", "types", "test"}


def test_features_are_normalised_per_query(py_index):
    searcher = Searcher(IndexStore(py_index / ".codeseer"))
    found = searcher.file_ranker.candidates("printer: fix duplicative replacement in multiline mode")
    f = dict(zip([p for _, p in found.keys], found.features))
    column = {name: found.features[:, n] for n, name in enumerate(FEATURES)}
    assert column["bm25"].max() == pytest.approx(1.0) and column["bm25"].min() >= 0
    assert column["dense_best"].max() == pytest.approx(0.0) and (column["dense_best"] <= 0).all()
    assert (column["dense_top3"] <= 1e-9).all()
    chunks = {r["path"]: r["chunks"] for r in searcher.files.to_arrow().to_pylist()}
    for path, row in f.items():
        assert row[FEATURES.index("size")] == pytest.approx(math.log1p(chunks[path]))
    assert set(f) == set(PY_REPO)  # every source file is a candidate, matched or not


def test_a_scope_word_finds_its_module(py_index):
    searcher = Searcher(IndexStore(py_index / ".codeseer"))
    text = "printer: fix duplicative replacement in multiline mode"
    found = searcher.file_ranker.candidates(text)
    named = dict(zip([p for _, p in found.keys], found.features[:, FEATURES.index("named")]))
    assert named == {"printer/standard.py": 1.0, "printer/util.py": 1.0, "globset/glob.py": 0.0,
                     "config/defaults.py": 0.0, "core/params.py": 0.0}
    bm25 = dict(zip([p for _, p in found.keys], found.features[:, FEATURES.index("bm25")]))
    assert max(bm25, key=bm25.get) == "globset/glob.py"  # words alone point elsewhere
    ranker = FileRanker(searcher, no_dense(load_weights()))
    assert ranker.rank(text, k=1)[0].path.startswith("printer/")
    without_scope = ranker.rank("fix duplicative replacement in multiline mode", k=1)[0]
    assert without_scope.path == "globset/glob.py"


def test_a_quoted_identifier_finds_its_definition(py_index):
    searcher = Searcher(IndexStore(py_index / ".codeseer"))
    text = "Hide unset default values in `lookup_default()`"
    found = searcher.file_ranker.candidates(text)
    by_path = {p: row for (_, p), row in zip(found.keys, found.features)}
    defined, used = FEATURES.index("ident_defined"), FEATURES.index("ident_used")
    assert by_path["config/defaults.py"][defined] == 1.0 and by_path["core/params.py"][defined] == 0.0
    assert by_path["core/params.py"][used] == 1.0 and by_path["printer/util.py"][used] == 0.0
    bm25 = FEATURES.index("bm25")
    assert by_path["core/params.py"][bm25] > by_path["config/defaults.py"][bm25]
    ranked = FileRanker(searcher, no_dense(load_weights())).rank(text, k=2, chunks_per_file=2)
    assert ranked[0].path == "config/defaults.py"
    result = locate(searcher, text, k=2)
    top = next(f for f in result.files if f.path == "config/defaults.py")
    assert top.functions[0].symbol == "lookup_default"  # the function the text names comes first


def test_a_file_the_text_names_is_named(py_index):
    searcher = Searcher(IndexStore(py_index / ".codeseer"))
    found = searcher.file_ranker.candidates('Traceback: File "tool/printer/util.py", line 4, in replace_all')
    named = dict(zip([p for _, p in found.keys], found.features[:, FEATURES.index("named")]))
    assert named["printer/util.py"] == 1.0 and named["printer/standard.py"] == 0.0


def test_weights_files_and_their_errors(tmp_path, py_index):
    shipped = load_weights()
    assert set(shipped.weights) == set(FEATURES) and shipped.fitted_on
    assert shipped.weights["bm25"] > 0 and shipped.weights["named"] > 0
    path = tmp_path / "w.json"
    RankerWeights({"bm25": 1.0}, fitted_on="x").save(path)
    assert load_weights(path).vector().tolist() == [1.0] + [0.0] * (len(FEATURES) - 1)
    for bad, message in [({"weights": {"bm25": "a"}}, "finite number"), ({"weights": {"nope": 1}}, "unknown feature"),
                         ({"w": 1}, "expected"), ([], "not a JSON object")]:
        path.write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(CodeseerError, match=message):
            load_weights(path)
    with pytest.raises(CodeseerError, match="not found"):
        load_weights(tmp_path / "missing.json")
    # --weights on the CLI: only the BM25 feature counts
    path.write_text(json.dumps({"weights": {"bm25": 1.0}}), encoding="utf-8")
    result = run_cli("locate", "fix duplicative replacement in multiline mode", "--weights", str(path), "--json",
                     "-k", "1", cwd=py_index)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files"][0]["path"] == "globset/glob.py"


def _make_pre_kinds(index_dir: Path) -> None:
    """Turn an index into one written before file kinds: no file-level columns, no files BM25 index."""
    store = IndexStore(index_dir)
    state = store.read_state()
    chunks, files = store.writable_tables(state, state.dim, state.precision)
    for index in files.list_indices():
        files.drop_index(index.name)
    chunks.drop_columns(["file_kind"])
    files.drop_columns(list(FILE_LEVEL_COLUMNS))
    raw = asdict(state) | {"chunks_version": chunks.version, "files_version": files.version}
    (index_dir / "state.json").write_text(json.dumps(raw), encoding="utf-8")
    (index_dir / "history.json").unlink(missing_ok=True)


def test_an_index_from_before_file_kinds_is_upgraded_reusing_every_vector(tmp_path, tiny_model_dir):
    repo = write_files(tmp_path / "tool", PY_REPO)
    first = index_repository(repo, model=str(tiny_model_dir))
    _make_pre_kinds(repo / ".codeseer")
    store = IndexStore(repo / ".codeseer")
    searcher = Searcher(store)
    assert searcher.search("replacement", k=3)  # plain search still works
    for call in (lambda: locate(searcher, "replacement"), lambda: searcher.search("x", file_kinds=["source"])):
        with pytest.raises(CodeseerError, match="from before file kinds; run `codeseer index`"):
            call()
    report = index_repository(repo, model=str(tiny_model_dir))
    assert report.changed_files == len(PY_REPO) and report.embedded_chunks == 0
    assert report.reused_chunks == first.chunks == report.chunks
    fresh = Searcher(store)
    assert locate(fresh, "printer: fix duplicative replacement").files
    again = index_repository(repo, model=str(tiny_model_dir))
    assert again.changed_files == 0 and again.embedded_chunks == 0


def test_a_touched_file_keeps_its_file_level_row(tmp_path, tiny_model_dir):
    repo = write_files(tmp_path / "tool", PY_REPO)
    index_repository(repo, model=str(tiny_model_dir))
    before = {r["path"]: r for r in Searcher(IndexStore(repo / ".codeseer")).files.to_arrow().to_pylist()}
    target = repo / "config" / "defaults.py"
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 5_000_000_000))
    report = index_repository(repo, model=str(tiny_model_dir))
    assert report.changed_files == 0
    after = {r["path"]: r for r in Searcher(IndexStore(repo / ".codeseer")).files.to_arrow().to_pylist()}
    row, old = after["config/defaults.py"], before["config/defaults.py"]
    assert row["mtime_ns"] == old["mtime_ns"] + 5_000_000_000
    for column in FILE_LEVEL_COLUMNS + ("file_hash", "chunks"):
        assert row[column] == old[column], column
    assert locate(Searcher(IndexStore(repo / ".codeseer")), "`lookup_default`").files[0].path == "config/defaults.py"


@pytest.mark.slow
def test_locate_cli_and_its_errors(py_index):
    result = run_cli("locate", "printer: fix duplicative replacement in multiline mode", "--json", "-k", "2",
                     cwd=py_index)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["files"]) == 2 and set(data["files"][0]["features"]) == set(FEATURES)
    assert all(f["kind"] == "source" for f in data["files"])
    result = run_cli("locate", "x", "--include", "tset", cwd=py_index)
    assert result.returncode == 1 and "unknown file kind 'tset' for --include" in result.stderr
    text = run_cli("locate", "printer: replacement", "-k", "3", "--include", "test,docs", cwd=py_index)
    assert text.returncode == 0 and "printer/" in text.stdout.splitlines()[0]


def test_locate_filters_narrow_the_candidates(py_index):
    searcher = Searcher(IndexStore(py_index / ".codeseer"))
    text = "fix duplicative replacement in multiline mode"
    assert {f.path for f in locate(searcher, text, k=10, path_glob="printer/**").files} == {
        "printer/standard.py", "printer/util.py"}
    assert locate(searcher, text, languages=["go"]).files == []
    assert [f.path for f in locate(searcher, text, k=10, path_glob="globset/*").files] == ["globset/glob.py"]
    with pytest.raises(CodeseerError, match="unknown repo"):
        locate(searcher, text, repos=["elsewhere"])


def test_new_kind_rules_reclassify_an_index_on_its_next_update(tmp_path, tiny_model_dir, monkeypatch):
    import codeseer.index.indexer as indexer

    repo = write_files(tmp_path / "tool", PY_REPO)
    first = index_repository(repo, model=str(tiny_model_dir))
    assert json.loads((repo / ".codeseer" / "state.json").read_text())["file_kinds"] == indexer.KIND_RULES
    assert index_repository(repo, model=str(tiny_model_dir)).changed_files == 0
    monkeypatch.setattr(indexer, "KIND_RULES", indexer.KIND_RULES + 1)  # a codeseer with other rules
    again = index_repository(repo, model=str(tiny_model_dir))
    assert again.changed_files == len(PY_REPO) and again.embedded_chunks == 0 and again.chunks == first.chunks
    assert index_repository(repo, model=str(tiny_model_dir)).changed_files == 0
