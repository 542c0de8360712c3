"""The MCP server end to end: the official SDK's stdio client launches
``python -m codeseer.cli mcp --index ...`` as a subprocess, lists the tools and calls each one."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

from test_apps_helpers import build_index, make_repo  # noqa: E402

TOOLS = {"search", "similar", "locate", "context", "docs", "index_status"}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, tiny_model_dir) -> Path:
    root = make_repo(tmp_path_factory.mktemp("serve-mcp") / "repo")
    build_index(root, str(tiny_model_dir))
    return root / ".codeseer"


def _field(obj, snake: str, camel: str):
    """mcp 2.x uses snake_case attributes, mcp 1.x camelCase."""
    return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)


def _data(result) -> dict:
    structured = _field(result, "structured_content", "structuredContent")
    if structured:
        return structured.get("result", structured) if set(structured) == {"result"} else structured
    return json.loads(result.content[0].text)


async def _session_run(index_dir: Path, errlog) -> dict:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "codeseer.cli", "mcp", "--index", str(index_dir)],
        env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
        cwd=str(index_dir.parent.parent),  # somewhere else than the repository: --index must be enough
    )
    out: dict = {}
    async with stdio_client(params, errlog=errlog) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            out["tools"] = {t.name: t for t in tools}
            out["status"] = await session.call_tool("index_status", {})
            out["search"] = await session.call_tool("search", {"query": "retry with backoff", "k": 3})
            out["similar"] = await session.call_tool("similar", {"location": "util/text.py:6", "k": 2})
            out["similar_code"] = await session.call_tool("similar", {"code": "def f(x):\n    return x\n", "k": 2})
            out["locate"] = await session.call_tool("locate", {"query": "retry_with_backoff never sleeps", "k": 2})
            out["context"] = await session.call_tool("context", {"query": "cart total price", "budget": 150})
            out["bad_path"] = await session.call_tool("similar", {"location": "../../etc/passwd:1"})
            out["bad_k"] = await session.call_tool("search", {"query": "x", "k": 1001})
            out["bad_budget"] = await session.call_tool("context", {"query": "x", "budget": 0})
            out["after_errors"] = await session.call_tool("index_status", {})
    return out


def test_mcp_server_over_stdio(index_dir, tmp_path):
    errlog_path = tmp_path / "server-stderr.txt"
    with open(errlog_path, "w") as errlog:
        out = asyncio.run(asyncio.wait_for(_session_run(index_dir, errlog), timeout=240))
    stderr = errlog_path.read_text()

    assert TOOLS <= set(out["tools"]), stderr
    search_tool = out["tools"]["search"]
    schema = _field(search_tool, "input_schema", "inputSchema")
    assert "query" in schema["properties"] and "query" in schema.get("required", [])
    assert "plain-language" in search_tool.description
    assert "kinds" in schema["properties"]
    params = {name: set(_field(tool, "input_schema", "inputSchema")["properties"]) for name, tool in out["tools"].items()}
    assert {"query", "path", "functions", "include"} <= params["locate"]  # the vocabulary of every interface
    assert {"query", "path", "budget"} <= params["context"] and {"location", "code", "path"} <= params["similar"]
    assert params["docs"] == {"location", "k"}
    assert not {"text", "task", "path_glob", "functions_per_file"} & set().union(*params.values())

    for name in ("status", "search", "similar", "similar_code", "locate", "context", "after_errors"):
        assert not _field(out[name], "is_error", "isError"), (name, out[name].content, stderr)
    assert _data(out["status"])["files"] == 7
    assert len(_data(out["search"])["hits"]) == 3
    similar = _data(out["similar"])
    assert similar["query"]["symbol"] == "slugify" and similar["hits"][0]["path"] == "legacy/text_utils.py"
    assert len(_data(out["similar_code"])["hits"]) == 2
    assert _data(out["locate"])["files"][0]["path"] == "net/retry.py"
    context = _data(out["context"])
    assert context["tokens"] <= 150 and context["markdown"].startswith("### ")
    assert context["blocks"] and all("text" not in b and b["header"] in context["markdown"] for b in context["blocks"])

    for name, fragment in (("bad_path", "must not contain '..'"), ("bad_k", "k must be an integer from 1 to 1000"),
                           ("bad_budget", "budget must be an integer from 1")):
        result = out[name]
        assert _field(result, "is_error", "isError"), name
        assert fragment in result.content[0].text, (name, result.content[0].text)
