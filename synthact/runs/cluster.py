"""The experiments of a run computed on a Ray cluster; the results land in the driver's cache.

The unit of work is one experiment of one subject in one step mode (`Unit`), a Ray task that asks
for a GPU when the run's device is CUDA and a CPU otherwise. Each subject's pool and sparsity are
computed first (or shipped from the driver's cache) and passed to its units through Ray; a node
keeps its last subject loaded for the units that follow. Results come back through Ray and are
written into the driver's `ResultCache`, so the nodes need no shared file system; units whose
entries the driver already holds are not submitted. Ray retries the tasks of a node that dies.

Only ``--ray`` imports this module, and only `sweep` imports Ray.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from synthact import run_environment
from synthact.core.cache import Arrays, ResultCache, key_digest
from synthact.core.stages import Stage, stage_table
from synthact.method.config import RunConfig
from synthact.method.experiments import EXPERIMENTS, Lab, method_version

LOCAL = "local"
"""``--ray local``: start a Ray cluster on this machine for the run."""

OBJECT_STORE_BYTES = 200 * 2**20
"""Object store of a ``--ray local`` cluster: a unit's result is a few MB at the paper's n."""


@dataclass(frozen=True)
class Entry:
    """One cache entry: the name and key `ResultCache` stores it under, and its arrays."""

    name: str
    key: Mapping[str, Any]
    arrays: Arrays


@dataclass(frozen=True)
class Unit:
    """One experiment of one subject in one step mode (None: an experiment without modes)."""

    config: RunConfig
    experiment: str
    mode: str | None

    @property
    def label(self) -> str:
        mode = f" {self.mode}" if self.mode else ""
        return f"{self.config.subject}: {self.experiment}{mode}"


@dataclass(frozen=True)
class Computed:
    """What a task sends back: the entries it computed, where, and how long it took."""

    label: str
    entries: list[Entry]
    node: str
    seconds: float
    stages: list[Stage]
    method: str


class EntryCache:
    """An in-memory `ResultCache` stand-in on a node: serves the entries it was given and keeps
    those it computes until `take_new`."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._new: list[Entry] = []

    def add(self, entries: list[Entry]) -> None:
        for entry in entries:
            self._entries.setdefault(key_digest(entry.key), entry)

    def get_or_compute(
        self, name: str, key: Mapping[str, Any], compute: Callable[[], Arrays]
    ) -> Arrays:
        digest = key_digest(key)
        if digest not in self._entries:
            entry = Entry(name, key, compute())
            self._entries[digest] = entry
            self._new.append(entry)
        return self._entries[digest].arrays

    def take_new(self) -> list[Entry]:
        """The entries computed since the last call."""
        new, self._new = self._new, []
        return new


class NotCached(LookupError):
    """A driver-side probe met an entry its cache does not hold."""


class CacheProbe:
    """Reads the driver's cache without computing: a miss raises `NotCached`; hits are kept."""

    def __init__(self, cache: ResultCache):
        self.cache = cache
        self.hits: list[Entry] = []

    def get_or_compute(
        self, name: str, key: Mapping[str, Any], compute: Callable[[], Arrays]
    ) -> Arrays:
        if not self.cache.path(name, key).exists():
            raise NotCached(name)
        arrays = self.cache.get_or_compute(name, key, _missing(name))
        self.hits.append(Entry(name, key, arrays))
        return arrays


def _missing(name: str) -> Callable[[], Arrays]:
    def compute() -> Arrays:
        raise NotCached(name)

    return compute


def units(config: RunConfig, experiments: Collection[str] | None = None) -> list[Unit]:
    """Every experiment of ``config`` (or of ``experiments``) that computes its own entries, in
    each of its modes."""
    return [
        Unit(config, experiment.name, mode)
        for experiment in EXPERIMENTS.values()
        if experiment.same_as is None and (experiments is None or experiment.name in experiments)
        for mode in experiment.modes or (None,)
    ]


def missing_units(
    config: RunConfig, cache: ResultCache, experiments: Collection[str] | None = None
) -> list[Unit]:
    """The `units` of ``config`` of which the driver's cache lacks some entry."""
    lab = Lab(config, CacheProbe(cache), progress=False)  # type: ignore[arg-type]

    def held(unit: Unit) -> bool:
        try:
            lab.compute(unit.experiment, unit.mode)
        except NotCached:
            return False
        return True

    return [unit for unit in units(config, experiments) if not held(unit)]


def cached_inputs(config: RunConfig, cache: ResultCache) -> list[Entry] | None:
    """The pool and sparsity of ``config`` from the driver's cache; None if either is missing."""
    probe = CacheProbe(cache)
    lab = Lab(config, probe, progress=False)  # type: ignore[arg-type]
    try:
        _inputs(lab)
    except NotCached:
        return None
    return probe.hits


def _inputs(lab: Lab) -> None:
    """Read (or compute) the pool and sparsity, which every unit reads."""
    _ = lab.pool, lab.sparsity


# --- on a node ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _node_lab(config: RunConfig) -> Lab:
    """The lab of this worker process: the subject stays loaded for the next unit of it."""
    return Lab(config, EntryCache(), progress=False)  # type: ignore[arg-type]


def _run_on_node(label: str, config: RunConfig, inputs: list[Entry], work: Callable[[Lab], object]):
    import ray

    start = time.perf_counter()
    lab = _node_lab(config)
    lab.cache.add(inputs)
    lab.cache.take_new()
    lab.pop_stages()
    work(lab)
    return Computed(
        label,
        lab.cache.take_new(),
        ray.get_runtime_context().get_node_id()[:8],
        time.perf_counter() - start,
        lab.pop_stages(),
        method_version(),
    )


def prepare_task(config: RunConfig, known: list[Entry]) -> Computed:
    """Compute ``config``'s pool and sparsity on a node (returned with ``known``, its input)."""

    computed = _run_on_node(f"{config.subject}: pool, sparsity", config, known, _inputs)
    return dataclasses.replace(computed, entries=known + computed.entries)


def unit_task(unit: Unit, prepared: Computed) -> Computed:
    """Compute one unit on a node, from its subject's pool and sparsity."""

    def work(lab: Lab) -> None:
        lab.compute(unit.experiment, unit.mode)

    return _run_on_node(unit.label, unit.config, prepared.entries, work)


# --- on the driver -----------------------------------------------------------------------------


@dataclass
class Sweep:
    """What a sweep did: units submitted and found cached, and the stages with their nodes."""

    submitted: int
    cached: int
    stages: list[Stage]
    per_node: Counter

    def summary(self) -> str:
        nodes = ", ".join(f"{node}: {count}" for node, count in sorted(self.per_node.items()))
        head = (
            f"ray: {self.submitted} tasks computed ({nodes or 'none'}), {self.cached} units cached"
        )
        return f"{head}\nstage timings on the cluster (wall seconds; node per task):\n" + (
            stage_table(self.stages)
        )


HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
CONNECT_SECONDS = 10.0
"""How long the head's port may take to accept a connection before the run stops."""


def _host_port(address: str) -> tuple[str, str]:
    """HOST (brackets kept) and PORT of ``HOST:PORT`` or ``ray://HOST:PORT``."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    return host, port


def check_address(address: str) -> str:
    """``address`` if Ray can take it (``auto``, ``local``, ``ray://HOST:PORT``, ``HOST:PORT``,
    HOST an IP address or a host name, PORT in 1..65535); checked without any network access."""
    host, port = _host_port(address)
    if address in ("auto", LOCAL) or (
        _valid_host(host) and port.isdigit() and 0 < int(port) < 65536
    ):
        return address
    raise ValueError(
        f"--ray {address!r}: give auto (the cluster this machine belongs to), ray://HOST:10001 "
        "(a Ray client server), HOST:PORT (a head node's GCS), or local (a cluster started here); "
        "HOST an IP address or host name, PORT 1-65535"
    )


def _valid_host(host: str) -> bool:
    """An IPv4 or IPv6 literal (``[::1]``), or a host name that is not a malformed IPv4."""
    try:
        ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
        return True
    except ValueError:
        numeric = host.replace(".", "").isdigit()
        return bool(host) and not numeric and HOSTNAME.fullmatch(host) is not None


def is_loopback(address: str) -> bool:
    """True for ``local`` and for a HOST:PORT whose host is a loopback address or localhost."""
    if address == LOCAL:
        return True
    host = _host_port(address)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_reachable(address: str, timeout: float = CONNECT_SECONDS) -> None:
    """Raise `RuntimeError` in one line unless HOST:PORT accepts a TCP connection within
    ``timeout`` seconds (``auto`` and ``local`` are not probed)."""
    if address in ("auto", LOCAL):
        return
    host, port = _host_port(address)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise RuntimeError(
            f"--ray {address}: no Ray cluster answers there within {timeout:.0f} s ({error}); "
            "start one (ray start --head) or give another address"
        ) from None


def sweep(
    configs: list[RunConfig],
    address: str,
    cache: ResultCache,
    *,
    experiments: Collection[str] | None = None,
    progress: bool | None = None,
) -> Sweep:
    """Compute on the Ray cluster at ``address`` every unit of ``configs`` (of ``experiments``,
    default all) that ``cache`` lacks, writing the results into ``cache`` as they arrive."""
    try:
        import ray
    except ImportError:
        raise RuntimeError(
            "--ray needs Ray: pip install -e '.[ray]' (or pip install 'ray>=2.50')"
        ) from None
    check_address(address)
    plans = [(config, missing_units(config, cache, experiments)) for config in configs]
    cached = sum(len(units(config, experiments)) - len(todo) for config, todo in plans)
    if not any(todo for _, todo in plans):
        return Sweep(0, cached, [], Counter())
    _connect(ray, address)
    try:
        pending = _submit(ray, [plan for plan in plans if plan[1]], cache)
        stages, per_node = _collect(ray, pending, cache, progress)
    finally:
        ray.shutdown()
    return Sweep(len(pending), cached, stages, per_node)


def _connect(ray: Any, address: str) -> None:
    """Connect to the cluster at ``address``, or start one here (``local``), reachable at
    127.0.0.1 only and without a dashboard. A loopback address stays loopback: the driver's
    node is 127.0.0.1 too (Ray otherwise rewrites it to the machine's other address)."""
    if address != LOCAL:
        check_reachable(address)
        gcs_loopback = is_loopback(address) and not address.startswith("ray://")
        loopback = {"_node_ip_address": "127.0.0.1"} if gcs_loopback else {}
        ray.init(address=address, log_to_driver=False, **loopback)
        return
    ray.init(
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        object_store_memory=OBJECT_STORE_BYTES,
        log_to_driver=False,
    )


def _submit(ray: Any, plans: list[tuple[RunConfig, list[Unit]]], cache: ResultCache) -> dict:
    """Submit each subject's pool and sparsity (unless cached) and its missing units; the tasks
    by their result's object ref, each with its label."""
    options = {
        "max_retries": 3,
        "runtime_env": {"env_vars": run_environment()},  # set before the task imports torch
        **_resources([config for config, _ in plans], ray),
    }
    prepare = ray.remote(**options)(prepare_task)
    compute = ray.remote(**options)(unit_task)
    pending = {}
    for config, todo in plans:
        inputs = cached_inputs(config, cache)
        if inputs is None:
            prepared = prepare.remote(config, [])
            pending[prepared] = f"{config.subject}: pool, sparsity"
        else:
            prepared = ray.put(Computed(config.subject, inputs, "driver", 0.0, [], ""))
        pending.update({compute.remote(unit, prepared): unit.label for unit in todo})
    return pending


def _resources(configs: list[RunConfig], ray: Any) -> dict[str, float]:
    """A GPU per task when the run computes on CUDA (the cluster must have one), else a CPU."""
    if not any(config.device.startswith("cuda") for config in configs):
        return {"num_cpus": 1}
    if ray.cluster_resources().get("GPU", 0) < 1:
        raise RuntimeError(
            "the run's device is cuda but the Ray cluster has no GPU; use --device cpu"
        )
    return {"num_gpus": 1, "num_cpus": 0}


def _collect(
    ray: Any, pending: dict, cache: ResultCache, progress: bool | None
) -> tuple[list[Stage], Counter]:
    """Wait for every task, writing its entries into ``cache`` as it finishes."""
    from tqdm.auto import tqdm

    stages: list[Stage] = []
    per_node: Counter = Counter()
    shown = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=len(pending), desc="ray", unit="exp", disable=not shown) as bar:
        waiting = list(pending)
        while waiting:
            (done,), waiting = ray.wait(waiting, num_returns=1)
            computed = ray.get(done)
            _store(computed, cache)
            per_node[computed.node] += 1
            stages.append(Stage(f"{computed.label} [node {computed.node}]", computed.seconds, 0))
            stages += [Stage(s.name, s.seconds, s.depth + 1) for s in computed.stages]
            bar.set_postfix({f"node {node}": count for node, count in sorted(per_node.items())})
            bar.update()
            if not shown:
                finished = len(pending) - len(waiting)
                print(
                    f"synthact ray: {computed.label} done in {computed.seconds:.1f} s on node "
                    f"{computed.node} ({finished}/{len(pending)})",
                    file=sys.stderr,
                    flush=True,
                )
    return stages, per_node


def _store(computed: Computed, cache: ResultCache) -> None:
    if computed.method != method_version():
        raise RuntimeError(
            f"node {computed.node} runs other synthact code (method {computed.method}, here "
            f"{method_version()}): install the driver's checkout on every node"
        )
    for entry in computed.entries:
        cache.get_or_compute(entry.name, entry.key, lambda entry=entry: entry.arrays)
