"""Without the [train] or [ray] extras: one line naming the extra, never a traceback; the bundled
model keeps working without torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from codeseer.errors import CodeseerError
from codeseer.extras import missing_message, need
from codeseer.models.embedder import MINI_MODEL, Embedder


def test_missing_messages_name_the_extra():
    assert missing_message("torch.nn", "x") == ("x needs torch, which is not installed: pip install 'codeseer[train]' "
                                                 "(install torch==2.13.0 first: the CPU build)")
    assert "pip install 'codeseer[ray]'" in missing_message("ray")
    assert "sentence-transformers" in missing_message("sentence_transformers.losses")
    assert missing_message("numpy") is None and missing_message("") is None


def test_need_imports_or_says_which_extra(monkeypatch):
    assert need("json", "x").dumps([]) == "[]"
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails as if it were not installed
    with pytest.raises(CodeseerError, match=r"codeseer train needs torch, which is not installed: pip install 'codeseer\[train\]'"):
        need("torch", "codeseer train")


def test_torch_models_say_so_and_the_bundled_one_needs_no_torch(monkeypatch, tiny_model_dir):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(CodeseerError, match=r"on PyTorch; only the bundled models ship ONNX graphs\) needs torch"):
        Embedder(str(tiny_model_dir))
    vectors = Embedder(MINI_MODEL).encode(["def add(a, b): return a + b"])
    assert vectors.shape == (1, 384)


BLOCKED_CLI = textwrap.dedent('''
    import sys
    for name in ("torch", "sentence_transformers", "model2vec", "ray"):
        sys.modules[name] = None  # as in a core install: pip install codeseer
    from codeseer.cli import main
    sys.argv = ["codeseer", *sys.argv[1:]]
    main()
''')


@pytest.mark.parametrize("args,needle", [
    (["train", "--pairs", "p.jsonl", "--out", "m"], "codeseer train needs torch"),
    (["distill", "--pairs", "p.jsonl", "--out", "m"], "codeseer distill needs model2vec"),
    (["embed", "hello", "--backend", "torch"], "needs torch, which is not installed"),
])
def test_the_cli_says_which_extra_in_one_line(tmp_path, args, needle):
    done = subprocess.run([sys.executable, "-c", BLOCKED_CLI, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and needle in lines[0] and "codeseer[" in lines[0]
