"""Does it find the right thing with the real default model (all-MiniLM-L6-v2, bundled, offline)?

One small fixture repository, indexed once: a Java method finds its C# twin, the documentation of
a function is the guide section about it, an issue lands on the right file, and the one docstring
that describes something else entirely is flagged as stale.
"""

from __future__ import annotations

import pytest

from codeseer.apps.docs import docs_for, stale_docs
from codeseer.apps.dupes import find_dupes
from codeseer.apps.locate import locate
from codeseer.apps.similar import similar

from test_apps_helpers import build_index, make_repo


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    return build_index(make_repo(tmp_path_factory.mktemp("apps-minilm") / "repo"), None)


def test_java_method_finds_its_csharp_twin(minilm):
    result = similar(minilm, path="shop/Cart.java", line=9, k=3)
    top = result.hits[0]
    assert (top.path, top.symbol) == ("shop/Cart.cs", "Cart.TotalPrice")
    assert top.score > 0.8 and top.score - result.hits[1].score > 0.2
    in_cs = similar(minilm, path="shop/Cart.java", line=9, k=1, languages=["cs"])
    assert in_cs.hits[0].symbol == "Cart.TotalPrice"
    # and a Python snippet of the same logic finds the Java and C# methods before anything else
    snippet = "def total_price(items):\n    total = 0\n    for item in items:\n        total += item.price * item.quantity\n    return total\n"
    found = {h.symbol for h in similar(minilm, code=snippet, k=2).hits}
    assert found == {"Cart.totalPrice", "Cart.TotalPrice"}


def test_dupes_cluster_copies_and_twins(minilm):
    clusters = [{(m.path, m.symbol) for m in c.members} for c in find_dupes(minilm, threshold=0.9).clusters]
    assert {("util/text.py", "slugify"), ("legacy/text_utils.py", "slugify")} in clusters
    assert {("shop/Cart.java", "Cart.totalPrice"), ("shop/Cart.cs", "Cart.TotalPrice")} in clusters


def test_docs_of_a_function_is_its_guide_section(minilm):
    result = docs_for(minilm, "net/retry.py", 10, k=5)
    sections = [h for h in result.hits if h.kind == "section"]
    assert sections[0].title == "Guide > Retrying failed network calls"
    assert result.hits[0].kind == "section" or result.hits[0].own
    config = docs_for(minilm, "util/text.py", 15, k=3)
    assert [h.title for h in config.hits if h.kind == "section"][0] == "Guide > Configuration files"


def test_locate_an_issue(minilm):
    result = locate(minilm, "Network calls fail immediately on a connection error instead of being retried "
                            "with exponential backoff", k=3)
    assert result.files[0].path == "net/retry.py"
    assert result.files[0].functions[0].symbol == "retry_with_backoff"


def test_stale_docstring_is_flagged(minilm):
    result = stale_docs(minilm)
    assert result.documented == 14
    assert [s.symbol for s in result.flagged] == ["compute_average"]
    assert result.flagged[0].z < -2
