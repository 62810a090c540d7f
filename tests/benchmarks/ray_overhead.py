"""Ray's overhead per experiment: the sweep of tests/integration/test_cluster.py computed here, in
one process, and on a local cluster of two one-CPU nodes (plus a head that only schedules), each
from an empty cache. Run: python tests/benchmarks/ray_overhead.py"""

from __future__ import annotations

import os
import sys
import tempfile
import time

root = tempfile.mkdtemp(prefix="ray")
os.mkdir(os.path.join(root, "ray"))
os.environ.update(RAY_TMPDIR=root, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")  # before Ray's import
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ray.cluster_utils import Cluster  # noqa: E402
from test_cluster import EXPERIMENTS, NODE, configs  # noqa: E402

from synthact.core.cache import ResultCache  # noqa: E402
from synthact.method.experiments import Lab  # noqa: E402
from synthact.runs.cluster import sweep, units  # noqa: E402


def local() -> float:
    start = time.perf_counter()
    for config in configs():
        lab = Lab(config, ResultCache(tempfile.mkdtemp()), progress=False)
        for unit in units(config, EXPERIMENTS):
            lab.compute(unit.experiment, unit.mode)
    return time.perf_counter() - start


def on_cluster() -> tuple[float, float, int]:
    start = time.perf_counter()
    node = {**NODE, "temp_dir": os.path.join(root, "ray"), "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "num_cpus": 0})
    for _ in range(2):
        cluster.add_node(**node, num_cpus=1)
    cluster.wait_for_nodes()
    started = time.perf_counter()
    try:
        done = sweep(
            configs(), cluster.gcs_address, ResultCache(tempfile.mkdtemp()), experiments=EXPERIMENTS
        )
    finally:
        cluster.shutdown()
    return started - start, time.perf_counter() - started, done.submitted


if __name__ == "__main__":
    here = local()
    up, swept, tasks = on_cluster()
    print(
        f"local, one process: {here:.1f} s; cluster start {up:.1f} s, sweep {swept:.1f} s "
        f"for {tasks} tasks on 2 nodes: ratio {swept / here:.2f}, "
        f"overhead {(swept - here) / tasks:+.1f} s per task"
    )
