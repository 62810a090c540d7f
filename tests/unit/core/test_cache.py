"""The result cache: hits, misses, corrupt entries, and one computation across processes."""

import multiprocessing
import os
import stat
import time

import numpy as np
import pytest

from synthact.core.cache import ResultCache, key_digest

KEY = {"experiment": "demo", "seed": 0}


def _arrays():
    return {"a": np.arange(6).reshape(2, 3), "b/c": np.linspace(0, 1, 4, dtype=np.float32)}


def test_miss_computes_then_hit_reads(tmp_path):
    cache, calls = ResultCache(tmp_path), []

    def compute():
        calls.append(1)
        return _arrays()

    first = cache.get_or_compute("demo", KEY, compute)
    second = cache.get_or_compute("demo", KEY, compute)
    assert len(calls) == 1
    for name, value in _arrays().items():
        np.testing.assert_array_equal(first[name], value)
        np.testing.assert_array_equal(second[name], value)
        assert second[name].dtype == value.dtype


def test_key_changes_miss(tmp_path):
    cache = ResultCache(tmp_path)
    assert cache.path("demo", KEY) != cache.path("demo", {**KEY, "seed": 1})
    assert key_digest({"a": 1, "b": 2}) == key_digest({"b": 2, "a": 1})


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "empty", "npy", "directory"])
def test_corrupt_entry_is_recomputed(tmp_path, caplog, damage):
    cache = ResultCache(tmp_path)
    cache.get_or_compute("demo", KEY, _arrays)
    path = cache.path("demo", KEY)
    blob = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(blob[: len(blob) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file")
    elif damage == "flip":  # same size, one array byte changed: only the content digest can tell
        i = blob.index(np.arange(6).tobytes()) + 8
        path.write_bytes(blob[:i] + bytes([blob[i] ^ 1]) + blob[i + 1 :])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "directory":  # a folder, with a file in it, where the entry belongs
        path.unlink()
        path.mkdir()
        (path / "stray").write_bytes(blob)
    else:  # a plain .npy under the entry's name
        with path.open("wb") as f:
            np.save(f, np.arange(3))
    calls = []

    def compute():
        calls.append(1)
        return _arrays()

    again = cache.get_or_compute("demo", KEY, compute)
    assert calls == [1]
    np.testing.assert_array_equal(again["a"], _arrays()["a"])
    assert "discarding corrupt cache entry" in caplog.text
    assert cache.get_or_compute("demo", KEY, compute) and calls == [1]  # healed on disk


def test_entries_are_readable_by_the_group(tmp_path):
    mask = os.umask(0o022)
    try:
        cache = ResultCache(tmp_path)
        cache.get_or_compute("demo", KEY, _arrays)
    finally:
        os.umask(mask)
    assert stat.S_IMODE(cache.path("demo", KEY).stat().st_mode) == 0o644


def test_entry_under_another_key_is_rejected(tmp_path):
    cache = ResultCache(tmp_path)
    cache.get_or_compute("demo", KEY, _arrays)
    other = {**KEY, "seed": 1}
    cache.path("demo", KEY).rename(cache.path("demo", other))
    assert cache.get_or_compute("demo", other, lambda: {"a": np.zeros(1)})["a"].shape == (1,)


def test_no_temporary_files_left(tmp_path):
    cache = ResultCache(tmp_path)
    cache.get_or_compute("demo", KEY, _arrays)
    assert [p.suffix for p in cache.dir.iterdir() if p.suffix != ".lock"] == [".npz"]


def test_failed_computation_leaves_no_entry(tmp_path):
    cache = ResultCache(tmp_path)

    def explode():
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("demo", KEY, explode)
    assert not cache.path("demo", KEY).exists()


def _slow_compute(root, log):
    def compute():
        with open(log, "a") as f:
            f.write("computed\n")
        time.sleep(0.5)
        return _arrays()

    ResultCache(root).get_or_compute("demo", KEY, compute)


def test_concurrent_processes_compute_once(tmp_path):
    log = tmp_path / "log.txt"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_slow_compute, args=(tmp_path, log)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert log.read_text().count("computed") == 1
