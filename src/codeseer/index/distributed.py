"""Embed an index's new chunks on a Ray cluster: ``codeseer index PATH --ray ADDRESS``.

Only embedding is distributed, because it is where the time goes; walking, chunking, journaling and
writing stay in the driver (the one writer of the index). :class:`RayEmbedder` is an
:class:`~codeseer.models.encoder.Encoder`, what the indexer needs from a model (``dim``,
``fingerprint``, ``encode_documents(texts, on_slab=...)``), plus ``close()``, which the indexer
calls after a run to stop the actors. It cuts the texts into shards aligned with
``encode_documents``' slabs, keeps two shards in flight per actor, and hands each finished shard to
``on_slab`` at once, so the indexer journals it and a killed run loses only shards in flight.

One model per actor: each actor builds the very ``Embedder`` the local run would (model, recipe,
dim, backend, int8, bf16), on a GPU of its own when the cluster has GPUs, else on its share of a
node's CPUs. Shard boundaries equal the local slab boundaries, so every batch the model sees is the
one it would see locally and the vectors are the same. Actors whose ``--backend auto`` resolves
differently (nodes with other CPU features) are refused rather than mixed into one index.

Assumptions: every node has codeseer (same version) and its dependencies installed; the model is
loadable on every node under the same name: the bundled default, a hub id in each node's HF cache,
or a local folder at the same absolute path on every node (a shared file system, or copied there).
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from codeseer.errors import CodeseerError
from codeseer.models.embedder import CodeseerWarning, Embedder, resolve_model
from codeseer.models.factory import load_embedder

SPECIAL_ADDRESSES = ("auto", "local")
IN_FLIGHT = 2  # shards queued per actor: the next one is ready when the current one finishes
READY_TIMEOUT_S = float(os.environ.get("CODESEER_RAY_TIMEOUT", "600"))  # placing actors and loading models
_FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS", "TOKENIZERS_PARALLELISM")
# What must agree between actors (and equals the local Embedder's): the numerics of the vectors.
_MUST_AGREE = ("model", "recipe", "family", "pooling", "backend", "int8", "bf16", "task", "document_prefix",
               "dim", "max_seq_length")


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise CodeseerError("--ray needs the ray package, which is not installed: pip install 'codeseer[ray]'") from exc
    return ray


def connect(address: str) -> bool:
    """Connect the driver to Ray; True when this call started the connection (so close() ends it).

    ``auto``: RAY_ADDRESS or the cluster running on this machine; ``local``: a new in-process
    cluster; ``HOST:PORT``: that cluster's GCS (checked with a plain TCP connect first, so an
    unreachable address fails in seconds with one line instead of Ray's long retry loop).
    """
    ray = _import_ray()
    if ray.is_initialized():
        return False
    address = address.strip()
    if not address:
        raise CodeseerError("--ray needs an address: auto, local or HOST:PORT")
    if address not in SPECIAL_ADDRESSES and "://" not in address:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise CodeseerError(f"--ray {address!r}: expected auto, local or HOST:PORT (e.g. 10.0.0.5:6379)")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
        except OSError as exc:
            raise CodeseerError(
                f"cannot reach the Ray cluster at {address} ({exc.strerror or _short(exc)}): start it with "
                f"`ray start --head --port={port}` or use --ray local"
            ) from None
    kwargs = dict(log_to_driver=False, logging_level=logging.ERROR)
    if address == "local":
        kwargs["include_dashboard"] = False
    try:
        with warnings.catch_warnings():  # Ray's fork+exec of its daemons is safe; lancedb warns on any fork
            warnings.filterwarnings("ignore", message="lancedb fork support", category=RuntimeWarning)
            ray.init(address=address, **kwargs)
    except Exception as exc:
        hint = ("no running Ray cluster found (set RAY_ADDRESS, run `ray start --head`, or use --ray local)"
                if address == "auto" else _short(exc))
        raise CodeseerError(f"cannot connect to Ray at {address}: {hint}") from None
    return True


def plan_actors(nodes: list[dict], actors: int | None) -> list[dict]:
    """Ray options for each actor: one GPU each where the cluster has GPUs, else CPUs split per node.

    The default is one actor per GPU, or one per node holding all its CPUs. ``actors=N`` spreads N
    actors over the nodes in proportion to their GPUs (or CPUs), each pinned (softly) to its node.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    alive = [n for n in nodes if n.get("Alive", n.get("alive", True))]
    gpus = {n["NodeID"]: float(n["Resources"].get("GPU", 0)) for n in alive}
    cpus = {n["NodeID"]: float(n["Resources"].get("CPU", 0)) for n in alive}
    use_gpu = sum(gpus.values()) > 0
    capacity = {k: v for k, v in (gpus if use_gpu else cpus).items() if v > 0}
    if not capacity:
        raise CodeseerError("the Ray cluster has no CPUs or GPUs to run actors on")
    if actors is not None and actors < 1:
        raise CodeseerError(f"--ray-actors must be at least 1, not {actors}")
    if actors is None and not use_gpu:
        counts = dict.fromkeys(capacity, 1)  # one actor per node, holding all its CPUs
    else:
        counts = dict.fromkeys(capacity, 0)
        for _ in range(actors or max(1, int(sum(capacity.values())))):  # the most capacity per actor goes next
            best = max(capacity, key=lambda k: capacity[k] / (counts[k] + 1))
            counts[best] += 1
    plans = []
    for node, count in counts.items():
        share = capacity[node] / count if count else 0
        # Ray takes whole numbers above 1 and fractions below it.
        amount = float(int(share)) if share >= 1 else max(int(share * 1e4) / 1e4, 1e-4)
        for _ in range(count):
            resources = {"num_gpus": amount, "num_cpus": min(1.0, cpus[node]) or 0} if use_gpu else {"num_cpus": amount}
            plans.append({
                **resources,
                "scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=True),
                "device": "cuda" if use_gpu else "cpu",
                "threads": max(1, int(resources["num_cpus"])),
                "node": node,
            })
    return plans


class _EmbedWorker:
    """A Ray actor holding one model; never raises while loading, so the driver can say what failed."""

    def __init__(self, model: str, settings: dict, device: str, threads: int) -> None:
        self.error: str | None = None
        self.warnings: list[str] = []
        self.embedder: Embedder | None = None
        try:
            if device == "cpu":
                import torch

                torch.set_num_threads(threads)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", CodeseerWarning)
                self.embedder = load_embedder(model, device=device, **settings)
            self.warnings = [str(w.message) for w in caught if issubclass(w.category, CodeseerWarning)]
            _limit_onnx_threads(self.embedder, threads)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {_short(exc)}" if not isinstance(exc, CodeseerError) else str(exc)

    def info(self) -> dict:
        import ray

        context = ray.get_runtime_context()
        info = {"node": context.get_node_id(), "host": socket.gethostname(), "error": self.error,
                "warnings": self.warnings}
        if self.embedder is not None:
            info.update(describe=self.embedder.describe(), fingerprint=self.embedder.fingerprint(),
                        name=self.embedder.name)
        return info

    def encode(self, texts: list[str], slab: int) -> np.ndarray:
        return self.embedder.encode_documents(texts, slab=slab)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode_queries(texts)


def _limit_onnx_threads(embedder: Embedder, threads: int) -> None:
    """ONNX Runtime sizes its pool by the machine's cores, not the actor's CPU share: rebuild it smaller."""
    encoder = getattr(embedder, "_encoder", None)
    session = getattr(encoder, "session", None)
    if session is None or threads >= (os.cpu_count() or 1):
        return
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    encoder.session = ort.InferenceSession(str(encoder.path), options, providers=["CPUExecutionProvider"])


class RayEmbedder:
    """Document embedding spread over Ray actors: an :class:`~codeseer.models.encoder.Encoder` for the indexer."""

    def __init__(
        self,
        model: str | None = None,
        *,
        address: str = "auto",
        actors: int | None = None,
        recipe: str | None = None,
        dim: int | None = None,
        backend: str = "auto",
        quantize: bool = False,
        bf16: bool = False,
        shard: int = 256,
    ) -> None:
        self.resolved = resolve_model(model)
        self.shard = shard
        self.texts_per_node: dict[str, int] = {}
        self._actors: list = []
        self._nodes: list[str] = []
        self._owns_ray = connect(address)
        try:
            self._start(actors, dict(recipe=recipe, dim=dim, backend=backend, quantize=quantize, bf16=bf16))
        except BaseException:
            self.close()
            raise

    def _start(self, actors: int | None, settings: dict) -> None:
        ray = _import_ray()
        plans = plan_actors(ray.nodes(), actors)
        env = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ}
        remote = ray.remote(_EmbedWorker)
        for plan in plans:
            options = {k: plan[k] for k in ("num_cpus", "num_gpus", "scheduling_strategy") if k in plan}
            self._actors.append(remote.options(
                **options, max_restarts=1, max_task_retries=1, runtime_env={"env_vars": env} if env else None,
            ).remote(self.resolved.name, settings, plan["device"], plan["threads"]))
        refs = [a.info.remote() for a in self._actors]
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=READY_TIMEOUT_S)
        if pending:
            raise CodeseerError(
                f"Ray placed only {len(ready)} of {len(refs)} actors within {READY_TIMEOUT_S:.0f} s "
                f"(asked {_resources(plans[0])} each; the cluster has {_resources(ray.cluster_resources())} in all): "
                "use fewer --ray-actors or add nodes"
            )
        try:
            infos = ray.get(refs)
        except Exception as exc:
            raise CodeseerError(f"a Ray actor failed to start: {_short(exc)}") from None
        seen_warnings = set()
        for info in infos:
            if info["error"]:
                raise CodeseerError(
                    f"Ray actor on {info['host']} could not load {self.resolved.name}: {info['error']} "
                    "(a local model folder must exist at the same path on every Ray node)"
                )
            for message in info["warnings"]:
                if message not in seen_warnings:
                    seen_warnings.add(message)
                    warnings.warn(message, CodeseerWarning, stacklevel=4)
        first = infos[0]["describe"]
        for info in infos[1:]:
            differ = [k for k in _MUST_AGREE if info["describe"].get(k) != first.get(k)]
            if differ:
                detail = ", ".join(f"{k} {first.get(k)} vs {info['describe'].get(k)}" for k in differ)
                raise CodeseerError(
                    f"Ray actors on {infos[0]['host']} and {info['host']} load the model differently ({detail}); "
                    "pass --backend torch or --backend onnx so every shard is embedded the same way"
                )
        self._info = infos[0]
        self._nodes = [info["node"] for info in infos]

    # ------------------------------------------------------------------ the Embedder interface

    @property
    def name(self) -> str:
        return self.resolved.name

    @property
    def dim(self) -> int:
        return int(self._info["describe"]["dim"])

    def describe(self) -> dict:
        return dict(self._info["describe"], ray_actors=len(self._actors), ray_nodes=len(set(self._nodes)))

    def fingerprint(self) -> str:
        """The first actor's: the same as a local Embedder's on the same files, so the vector cache is shared."""
        return self._info["fingerprint"]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        ray = _import_ray()
        return np.array(ray.get(self._actors[0].encode_queries.remote(list(texts))))

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        slab: int = 256,
        on_slab: Callable[[int, np.ndarray], None] | None = None,
    ) -> np.ndarray:
        """Embed shards on the actors; ``on_slab(start, vectors)`` runs per slab as each shard arrives, in any order."""
        ray = _import_ray()
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        size = max(slab, self.shard // slab * slab)  # a whole number of slabs: the local batches exactly
        queue = deque(range(0, len(texts), size))
        in_flight: dict = {}
        results: dict[int, np.ndarray] = {}

        def submit(worker: int) -> None:
            start = queue.popleft()
            ref = self._actors[worker].encode.remote(texts[start : start + size], slab)
            in_flight[ref] = (start, worker)

        for _ in range(IN_FLIGHT):
            for worker in range(len(self._actors)):
                if queue:
                    submit(worker)
        try:
            while in_flight:
                done, _ = ray.wait(list(in_flight), num_returns=1)
                start, worker = in_flight.pop(done[0])
                try:
                    vectors = np.array(ray.get(done[0]), dtype=np.float32)  # a copy: frees the object store
                except Exception as exc:
                    raise CodeseerError(
                        f"embedding on Ray failed on node {self._nodes[worker][:12]} ({_short(_cause(exc))}); "
                        "shards already received were handed over, so a rerun resumes from them"
                    ) from None
                if queue:
                    submit(worker)
                node = self._nodes[worker]
                self.texts_per_node[node] = self.texts_per_node.get(node, 0) + len(vectors)
                results[start] = vectors
                if on_slab is not None:
                    for offset in range(0, len(vectors), slab):
                        on_slab(start + offset, vectors[offset : offset + slab])
        finally:
            for ref in in_flight:
                try:
                    ray.cancel(ref)
                except Exception:
                    pass
        return np.concatenate([results[s] for s in sorted(results)])

    def close(self) -> dict[str, int]:
        """Stop the actors (and Ray, if this embedder connected it); returns texts embedded per node id."""
        try:
            ray = _import_ray()
            for actor in self._actors:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:
                    pass
            self._actors = []
            if self._owns_ray and ray.is_initialized():
                ray.shutdown()
            self._owns_ray = False
        except Exception:
            pass
        return dict(self.texts_per_node)

    def __enter__(self) -> "RayEmbedder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _cause(exc: BaseException) -> BaseException:
    return getattr(exc, "cause", None) or exc


def _resources(resources: dict) -> str:
    keys = {"num_cpus": "CPU", "num_gpus": "GPU", "CPU": "CPU", "GPU": "GPU"}
    return ", ".join(f"{resources[k]:g} {keys[k]}" for k in keys if resources.get(k))


def ray_embedder_factory(address: str, actors: int | None, **settings) -> Callable[[str | None], RayEmbedder]:
    """What ``index_repository(ray_address=...)`` uses in place of the local Embedder factory."""
    return lambda model: RayEmbedder(model, address=address, actors=actors, **settings)


__all__ = ["RayEmbedder", "connect", "plan_actors", "ray_embedder_factory"]
