"""`codeseer index --ray`: a real two-node Ray cluster on loopback must build the same index as one process.

The cluster is two `ray start` processes (a head and a worker node, one CPU each) tagged with an
environment marker; teardown kills exactly that cluster's processes (by pid), not every Ray process
on the machine as `ray stop --force` would, since other work may share this host. The cluster uses
token authentication with a token of its own (Ray >= 2.5x turns it on once ~/.ray/auth_token exists).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

from codeseer.index.distributed import plan_actors  # noqa: E402
from codeseer.index.store import IndexStore  # noqa: E402

from conftest import run_cli  # noqa: E402

pytestmark = pytest.mark.slow  # clusters: Ray nodes started in the test

RAY = Path(sys.executable).with_name("ray")
MARKER_ENV = "CODESEER_TEST_RAY_CLUSTER"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _marked_pids(marker: str) -> list[int]:
    """This cluster's processes: those carrying its marker, their children, and the agents of its raylets.

    Raylets start their dashboard and runtime-env agents with a fresh environment (no marker) that
    names the raylet in RAY_RAYLET_PID, so those are found through it.
    """
    needle = f"{MARKER_ENV}={marker}".encode()
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        raylet = next((int(v.split(b"=", 1)[1]) for v in env if v.startswith(b"RAY_RAYLET_PID=")), None)
        procs[int(entry)] = (needle in env, ppid, raylet)
    found = {pid for pid, (marked, _, _) in procs.items() if marked}
    while True:
        more = {pid for pid, (_, ppid, raylet) in procs.items()
                if pid not in found and (ppid in found or raylet in found)}
        if not more:
            return sorted(found)
        found |= more


def _stop_cluster(marker: str) -> None:
    for _ in range(5):  # raylets respawn nothing once killed, but a worker may be forking as we look
        pids = _marked_pids(marker)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.5)


def _alive_nodes(address: str, auth: dict) -> list[str]:
    code = ("import json, logging, ray; ray.init(address=%r, logging_level=logging.ERROR, log_to_driver=False); "
            "print(json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive']]))" % address)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, **auth))
    return json.loads(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else []


@pytest.fixture(scope="module")
def ray_cluster():
    """A head and a worker node on 127.0.0.1 with one CPU each; yields (address, node ids, auth env)."""
    if not RAY.exists():
        pytest.skip("the ray command is not installed next to this Python")
    marker = uuid.uuid4().hex
    temp = Path(tempfile.mkdtemp(prefix="csray-", dir="/tmp"))  # short: Ray's unix sockets live under it
    port = free_port()
    address = f"127.0.0.1:{port}"
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex}
    env = dict(os.environ, **auth, **{MARKER_ENV: marker}, RAY_USAGE_STATS_ENABLED="0")
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--object-store-memory=100000000",
              "--disable-usage-stats"]
    try:
        for args in (["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}"],
                     [f"--address={address}"]):
            started = subprocess.run([str(RAY), "start", *args, f"--dashboard-agent-listen-port={free_port()}", *common],
                                     env=env, capture_output=True, text=True, timeout=120)
            assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        deadline = time.monotonic() + 60
        nodes = _alive_nodes(address, auth)
        while len(nodes) < 2 and time.monotonic() < deadline:
            time.sleep(1)
            nodes = _alive_nodes(address, auth)
        assert len(nodes) == 2, f"the worker node did not join: {nodes}"
        yield address, nodes, auth
    finally:
        _stop_cluster(marker)
        assert not _marked_pids(marker), "Ray processes of the test cluster survived teardown"
        shutil.rmtree(temp, ignore_errors=True)


def make_repo(root: Path, files: int = 36, functions: int = 10) -> Path:
    """Dozens of files, >256 chunks: more than one shard, so both actors get work."""
    for f in range(files):
        lines = [f'"""Module {f}: helpers for part {f} of the fixture."""', ""]
        for g in range(functions):
            lines += [
                f"def handler_{f}_{g}(value, scale={g + 1}):",
                f'    """Scale value by {g + 1} and add the offset of module {f}."""',
                f"    total = value * scale + {f * 7 + g}",
                "    if total > 100:",
                f"        return total - {g}",
                "    return total",
                "",
                "",
            ]
        path = root / f"pkg{f % 4}" / f"mod_{f}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines), encoding="utf-8")
    return root


def index_table(index_dir: Path):
    store = IndexStore(index_dir)
    chunks, _files = store.snapshot(store.read_state())
    return chunks.to_arrow().sort_by("chunk_id")


def test_ray_index_on_two_nodes_equals_the_local_index(tmp_path, monkeypatch, tiny_model_dir, ray_cluster):
    address, node_ids, auth = ray_cluster
    for key, value in auth.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CODESEER_VECTOR_CACHE", "off")  # else the second run would take every vector from the cache
    repo = make_repo(tmp_path / "repo")

    local = run_cli("index", str(repo), "--index", str(tmp_path / "local"), "--model", str(tiny_model_dir), "--json")
    assert local.returncode == 0, local.stderr
    distributed = run_cli("index", str(repo), "--index", str(tmp_path / "ray"), "--model", str(tiny_model_dir),
                          "--json", "--ray", address, "--ray-actors", "2")
    assert distributed.returncode == 0, distributed.stderr
    report = json.loads(distributed.stdout)
    assert report["chunks"] > 256 and report["embedded_chunks"] == report["chunks"]
    # Both actors embedded shards, one on each node of the cluster.
    assert sorted(report["ray_nodes"]) == sorted(node_ids)
    assert sum(report["ray_nodes"].values()) == report["embedded_chunks"]
    assert json.loads(local.stdout)["ray_nodes"] == {}

    a, b = index_table(tmp_path / "local"), index_table(tmp_path / "ray")
    assert len(a) == len(b) == report["chunks"]
    for column in ("chunk_id", "path", "start_line", "end_line", "symbol", "text", "content_hash"):
        assert a[column].to_pylist() == b[column].to_pylist(), column
    va = np.stack(a["vector"].to_numpy(zero_copy_only=False))
    vb = np.stack(b["vector"].to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(vb, va, atol=1e-5)
    # The journal of the Ray run was committed and dropped like a local one.
    assert not [n for n in IndexStore(tmp_path / "ray").table_names() if n.startswith("journal_")]

    # The Ray-built index is an ordinary index: search works on it without Ray.
    hits = run_cli("search", "scale value and add the offset of module 5", "--index", str(tmp_path / "ray"),
                   "--json", "-k", "3")
    assert hits.returncode == 0, hits.stderr
    assert len(json.loads(hits.stdout)) == 3


def test_killed_ray_run_keeps_finished_shards_and_the_rerun_resumes(tmp_path, monkeypatch, tiny_model_dir,
                                                                    ray_cluster):
    """SIGKILL the driver once a shard is journaled: nothing is committed, the rerun embeds only the rest."""
    address, _node_ids, auth = ray_cluster
    for key, value in {**auth, "CODESEER_VECTOR_CACHE": "off", "CODESEER_RAY_TIMEOUT": "90"}.items():
        monkeypatch.setenv(key, value)
    repo = make_repo(tmp_path / "repo", files=24, functions=24)  # > 512 chunks: 3 shards, some still in flight
    index = tmp_path / "idx"
    args = [sys.executable, "-m", "codeseer.cli", "index", str(repo), "--index", str(index), "--model",
            str(tiny_model_dir), "--json", "--ray", address, "--ray-actors", "2"]
    driver = subprocess.Popen(args, env=dict(os.environ, CODESEER_TRACE="1"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        embeds = 0
        for line in driver.stderr:  # "phase:embed" starts a save: at the second, the first shard is journaled
            embeds += line.startswith("phase:embed")
            if embeds == 2:
                os.kill(driver.pid, signal.SIGKILL)
                break
    finally:
        driver.kill()
        driver.wait(timeout=30)
    assert driver.returncode == -signal.SIGKILL
    assert IndexStore(index).read_state() is None  # nothing committed

    # The killed driver's actors go with it (else this run could not place its two), and the
    # journaled shard is not embedded again.
    rerun = run_cli(*args[3:])
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["chunks"] > 512
    assert 0 <= report["embedded_chunks"] <= report["chunks"] - 256
    assert sum(report["ray_nodes"].values()) == report["embedded_chunks"]

    local = run_cli("index", str(repo), "--index", str(tmp_path / "local"), "--model", str(tiny_model_dir), "--json")
    assert local.returncode == 0, local.stderr
    a, b = index_table(tmp_path / "local"), index_table(index)
    assert a["chunk_id"].to_pylist() == b["chunk_id"].to_pylist()
    np.testing.assert_allclose(np.stack(b["vector"].to_numpy(zero_copy_only=False)),
                               np.stack(a["vector"].to_numpy(zero_copy_only=False)), atol=1e-5)


def test_unreachable_cluster_and_misuse_fail_in_one_line(tmp_path, tiny_model_dir):
    repo = make_repo(tmp_path / "repo", files=2, functions=2)
    started = time.monotonic()
    result = run_cli("index", str(repo), "--model", str(tiny_model_dir), "--ray", f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "cannot reach the Ray cluster at 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert time.monotonic() - started < 60  # a refused TCP connect, not Ray's retry loop
    assert not (repo / ".codeseer" / "state.json").exists()

    result = run_cli("index", str(repo), "--ray", "not-an-address")
    assert result.returncode == 1 and "expected auto, local or HOST:PORT" in result.stderr
    result = run_cli("index", str(repo), "--ray-actors", "2")
    assert result.returncode == 1 and "--ray-actors needs --ray" in result.stderr
    help_text = run_cli("index", "--help").stdout
    assert "--ray" in help_text and "--ray-actors" in help_text


def test_actor_plan_follows_gpus_then_cpus():
    a, b, dead, g, c = ("%056x" % n for n in range(1, 6))  # node ids as Ray writes them: 28 bytes of hex
    cpu_nodes = [{"NodeID": a, "Alive": True, "Resources": {"CPU": 4.0}},
                 {"NodeID": b, "Alive": True, "Resources": {"CPU": 1.0}},
                 {"NodeID": dead, "Alive": False, "Resources": {"CPU": 64.0}}]
    default = plan_actors(cpu_nodes, None)  # one per live node, holding all its CPUs
    assert [(p["node"], p["num_cpus"], p["threads"], p["device"]) for p in default] == [
        (a, 4.0, 4, "cpu"), (b, 1.0, 1, "cpu")]
    five = plan_actors(cpu_nodes, 5)  # in proportion to CPUs: a gets 4 actors of 1 CPU, b one
    assert sorted((p["node"], p["num_cpus"]) for p in five) == [(a, 1.0)] * 4 + [(b, 1.0)]
    shared = plan_actors(cpu_nodes[1:2], 2)  # more actors than CPUs: fractions, one thread each
    assert [p["num_cpus"] for p in shared] == [0.5, 0.5] and all(p["threads"] == 1 for p in shared)

    gpu_nodes = [{"NodeID": g, "Alive": True, "Resources": {"CPU": 16.0, "GPU": 2.0}},
                 {"NodeID": c, "Alive": True, "Resources": {"CPU": 32.0}}]
    gpus = plan_actors(gpu_nodes, None)  # one per GPU; the CPU-only node is left out
    assert [(p["node"], p["num_gpus"], p["device"]) for p in gpus] == [(g, 1.0, "cuda")] * 2
    with pytest.raises(Exception, match="at least 1"):
        plan_actors(cpu_nodes, 0)
