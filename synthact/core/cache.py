"""A content-addressed on-disk cache of experiment results, safe across processes.

Each entry is one ``.npz`` file named by the SHA-256 of its key (subject, method version, config,
seed, ...). Entries are computed under a per-entry file lock, so concurrent pytest-xdist workers
compute an experiment once and the others wait and read it. Files are written to a temporary name
and renamed into place (atomic on POSIX and Windows), readable by whoever the umask lets read a
new file (the group, under the usual 022), so a lab can share one cache. Each carries its own key
and a digest of its arrays, so a half-written, emptied, replaced or corrupt entry is detected on
read, discarded with a warning and recomputed.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

log = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray]
_META = "__meta__"


def default_cache_dir() -> Path:
    """``$SYNTHACT_CACHE`` if set, else ``~/.cache/synthact``."""
    return Path(os.environ.get("SYNTHACT_CACHE", Path.home() / ".cache" / "synthact"))


def key_digest(key: Mapping[str, Any]) -> str:
    """Stable SHA-256 hex digest of a JSON-serialisable key."""
    blob = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of the arrays, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class ResultCache:
    """Experiment results on disk under ``root/results``, one locked, verified file per key."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.dir = self.root / "results"

    def path(self, name: str, key: Mapping[str, Any]) -> Path:
        return self.dir / f"{name}-{key_digest(key)[:24]}.npz"

    def get_or_compute(
        self, name: str, key: Mapping[str, Any], compute: Callable[[], Arrays]
    ) -> Arrays:
        """Return the cached arrays for ``key``, computing and storing them on a miss.

        Only one process computes a given key at a time; the others block on its lock and then read.
        """
        path = self.path(name, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            cached = self._read(path, key)
            if cached is not None:
                return cached
            arrays = {k: np.asarray(v) for k, v in compute().items()}
            self._write(path, key, arrays)
            return arrays

    def _read(self, path: Path, key: Mapping[str, Any]) -> Arrays | None:
        if not path.exists():
            return None
        try:
            arrays = _load_npz(path)
            meta = json.loads(arrays.pop(_META).tobytes().decode())
            if meta["key"] != key_digest(key) or meta["digest"] != arrays_digest(arrays):
                raise ValueError("key or content digest mismatch")
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as err:
            log.warning("discarding corrupt cache entry %s (%s); recomputing", path, err)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            return None
        return arrays

    def _write(self, path: Path, key: Mapping[str, Any], arrays: Arrays) -> None:
        meta = {"key": key_digest(key), "digest": arrays_digest(arrays), "spec": key}
        blob = np.frombuffer(json.dumps(meta, default=str).encode(), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays, **{_META: blob})
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _load_npz(path: Path) -> Arrays:
    """Every array of the ``.npz`` archive at ``path`` (ValueError for another kind of file)."""
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"not an .npz archive but a plain {type(loaded).__name__}")
    with loaded as npz:
        return {k: npz[k] for k in npz.files}


def _umask() -> int:
    """The process's umask (read by setting it, and restored at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
