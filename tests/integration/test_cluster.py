"""``--ray``: experiments computed on a real multi-node Ray cluster on this machine (a head without
CPUs and two one-CPU worker nodes, every server at 127.0.0.1) equal those computed here, through a
node killed mid-sweep and a driver killed and restarted."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from synthact.core.cache import ResultCache
from synthact.method.config import RunConfig
from synthact.method.experiments import Lab
from synthact.runs.cluster import check_address, check_reachable, is_loopback, sweep, units

pytestmark = pytest.mark.xdist_group("ray-cluster")  # one cluster, on one xdist worker

SUBJECTS = ("planted", "planted-null")
EXPERIMENTS = ("reconstruction", "latent-statistics")
"""The quickest experiments (three units a subject): the test is about placement, not the method."""

NODE = {"node_ip_address": "127.0.0.1", "object_store_memory": 100 * 2**20}


def configs() -> list[RunConfig]:
    return [RunConfig(subject=name, n=10, n_gaussian=400, device="cpu") for name in SUBJECTS]


def entries(cache: ResultCache) -> dict[str, dict[str, np.ndarray]]:
    """Every entry of ``cache`` by file name, its arrays by name."""
    found = {}
    for path in sorted(cache.dir.glob("*.npz")):
        with np.load(path) as npz:
            found[path.name] = {name: npz[name] for name in npz.files if name != "__meta__"}
    return found


def assert_identical(got: ResultCache, want: ResultCache) -> None:
    got_entries, want_entries = entries(got), entries(want)
    assert sorted(got_entries) == sorted(want_entries)
    for name, arrays in want_entries.items():
        assert sorted(got_entries[name]) == sorted(arrays), name
        for key, array in arrays.items():
            assert got_entries[name][key].tobytes() == array.tobytes(), f"{name}: {key}"


def wait_for_entries(cache: ResultCache, count: int, timeout: float = 300) -> None:
    """Block until ``cache`` holds ``count`` entries."""
    deadline = time.monotonic() + timeout
    while len(list(cache.dir.glob("*.npz"))) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{cache.dir} did not reach {count} entries")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> ResultCache:
    """The units computed here, in this process, on CPU."""
    cache = ResultCache(tmp_path_factory.mktemp("local"))
    for config in configs():
        lab = Lab(config, cache, progress=False)
        _ = lab.sparsity  # every unit's input on the cluster
        for unit in units(config, EXPERIMENTS):
            lab.compute(unit.experiment, unit.mode)
    return cache


@pytest.fixture(scope="module")
def cluster():
    """A head (no CPUs: it only schedules) and two worker nodes, each with its own raylet."""
    assert "ray" not in sys.modules, "Ray reads its environment when imported: import it here"
    root = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths must fit in 107 bytes
    os.mkdir(os.path.join(root, "ray"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_TMPDIR", root)  # not the machine's shared /tmp/ray
        env.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # 127.0.0.1 stays 127.0.0.1
        pytest.importorskip("ray", reason="--cluster needs Ray: pip install -e '.[ray]'")
        from ray.cluster_utils import Cluster

        node = {**NODE, "temp_dir": os.path.join(root, "ray"), "include_dashboard": False}
        ray_cluster = Cluster(initialize_head=True, head_node_args={**node, "num_cpus": 0})
        workers = [ray_cluster.add_node(**node, num_cpus=1) for _ in range(2)]
        ray_cluster.wait_for_nodes()
        try:
            yield ray_cluster, workers
        finally:
            ray_cluster.shutdown()
            shutil.rmtree(root, ignore_errors=True)


def test_an_address_ray_cannot_take_is_refused_early() -> None:
    assert check_address("ray://head:10001") == "ray://head:10001"
    for address in ("auto", "local", "10.0.0.1:6379"):
        assert check_address(address) == address
    for address in ("[::1]:6379", "localhost:6379", "127.0.0.1:6379", "head.example:6379"):
        assert check_address(address) == address
    for address in ("head", "999.1.1.1:1", "10.0.0:6379", "head:0", "head:70000", "-head:1"):
        with pytest.raises(ValueError, match="ray://HOST:10001"):
            check_address(address)


def test_a_cluster_that_does_not_answer_stops_the_run_in_one_line() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=f"127.0.0.1:{port}: no Ray cluster answers"):
        check_reachable(f"127.0.0.1:{port}", timeout=2)
    assert time.monotonic() - started < 3
    assert is_loopback(f"127.0.0.1:{port}") and is_loopback("localhost:1") and is_loopback("local")
    assert not is_loopback("10.0.0.1:6379") and not is_loopback("auto")


def test_without_the_flag_nothing_imports_ray() -> None:
    code = (
        "import sys, synthact.runs.cli, synthact.method.experiments, synthact.fixtures.cluster\n"
        "synthact.runs.cli.parser().parse_args(['replicate', '--subject', 'planted'])\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


@pytest.mark.cluster
def test_a_node_killed_mid_sweep_costs_only_its_tasks(cluster, local, tmp_path, capsys) -> None:
    ray_cluster, workers = cluster
    cache = ResultCache(tmp_path)
    inputs = 2 * len(SUBJECTS)  # each subject's pool and sparsity, written first

    def kill_a_node() -> None:
        wait_for_entries(cache, inputs + 1)
        ray_cluster.remove_node(workers.pop(0), allow_graceful=False)

    killer = threading.Thread(target=kill_a_node)
    killer.start()
    done = sweep(configs(), ray_cluster.gcs_address, cache, experiments=EXPERIMENTS)
    killer.join()
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("synthact ray: ")]
    print(done.summary())
    assert done.cached == 0
    assert done.submitted == len(SUBJECTS) + sum(len(units(c, EXPERIMENTS)) for c in configs())
    assert len(lines) == done.submitted  # off a terminal: a line per finished task
    assert lines[-1].endswith(f"({done.submitted}/{done.submitted})")
    assert_identical(cache, local)


@pytest.mark.cluster
def test_a_driver_killed_and_restarted_resumes_from_its_cache(cluster, local, tmp_path) -> None:
    ray_cluster, _ = cluster
    cache = ResultCache(tmp_path)
    code = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from test_cluster import EXPERIMENTS, configs\n"
        "from synthact.core.cache import ResultCache\n"
        "from synthact.runs.cluster import sweep\n"
        f"sweep(configs(), {ray_cluster.gcs_address!r}, ResultCache({str(tmp_path)!r}), "
        "experiments=EXPERIMENTS)\n"
    )
    root = Path(__file__).resolve().parents[2]
    driver = subprocess.Popen([sys.executable, "-c", code], cwd=root)
    try:
        wait_for_entries(cache, 2 * len(SUBJECTS) + 1)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    held = len(entries(cache))
    done = sweep(configs(), ray_cluster.gcs_address, cache, experiments=EXPERIMENTS)
    print(done.summary())
    total = sum(len(units(config, EXPERIMENTS)) for config in configs())
    assert done.cached >= 1
    assert done.submitted <= total - done.cached + len(SUBJECTS)
    assert held < len(entries(local))
    assert_identical(cache, local)
