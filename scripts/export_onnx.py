"""Export the bundled transformer model to the ONNX graphs that ship inside the package.

    .venv/bin/python scripts/export_onnx.py [--model codeseer-code-mini]

Writes ``src/codeseer/models/bundled/<model>/onnx/``: ``model.onnx`` (fp32 compute; its weights are
stored as float16, the precision the bundled safetensors already have, and cast to float32 when the
session starts, so the file is half the size and the vectors are those of PyTorch fp32), and
``model.int8.onnx`` (dynamic int8, per-channel weight scales: the document encoder of ``index`` on
CPUs with VNNI), and ``meta.json`` (inputs, width, pooling, input limit, the sha256 of the weights they
were made from, so a retrained model with stale graphs is refused by a test rather than shipped).

Needs torch (the ``[train]`` extra); the runtime that runs the graphs does not (:mod:`codeseer.models.runtime`).
Run it again after retraining the bundled model.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np


def fp16_storage(src: Path, dst: Path) -> None:
    """The same graph with every large float32 weight stored as float16 and cast back at load time."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    casts = []
    kept = []
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.size >= 1024:
            half = numpy_helper.from_array(array.astype(np.float16), init.name + "_fp16")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT,
                                          name=init.name + "_to_fp32"))
        else:
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="codeseer-code-mini")
    args = parser.parse_args()

    from codeseer.models import backends
    from codeseer.models.embedder import BUNDLED_DIR
    from codeseer.models.onnx_backend import export_onnx, quantize_int8
    from codeseer.models.runtime import GRAPH_DIR, INT8_GRAPH, META, ONNX_FORMAT, SHIPPED_GRAPH, weights_digest

    folder = BUNDLED_DIR / args.model
    info = backends.inspect_folder(folder)
    tokenizer = backends.load_tokenizer(folder)
    max_length = backends.pick_max_length(None, None, info, tokenizer)
    batcher = backends.TokenBatcher(tokenizer, max_length)
    target = folder / GRAPH_DIR
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        meta = export_onnx(folder, info, batcher, pooling=info.default_pooling, trust_remote_code=False, target=tmp)
        quantize_int8(tmp / "model.onnx", tmp / INT8_GRAPH)
        fp16_storage(tmp / "model.onnx", tmp / SHIPPED_GRAPH)
        target.mkdir(exist_ok=True)
        for name in (SHIPPED_GRAPH, INT8_GRAPH):
            shutil.copyfile(tmp / name, target / name)
    meta = {"format": ONNX_FORMAT, "inputs": meta["inputs"], "dim": meta["dim"], "pooling": meta["pooling"],
            "max_seq_length": max_length, "weights_sha256": weights_digest(folder),
            "graphs": {"fp32": SHIPPED_GRAPH, "int8": INT8_GRAPH}}
    (target / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    sizes = {p.name: round(p.stat().st_size / 1e6, 1) for p in sorted(target.iterdir())}
    print(f"wrote {target}: {sizes} MB")


if __name__ == "__main__":
    main()
