"""The Hugging Face hub cache in use: which files it holds, and pointing the libraries at another.

A hub cache is the standard layout (``models--ORG--NAME/refs/main`` holding a commit hash, files
under ``snapshots/<hash>/``); the libraries read its location and ``HF_HUB_OFFLINE`` from
``huggingface_hub.constants`` at call time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HubFile:
    """One file of a hub repo, as ``hf_hub_download`` names it."""

    repo_id: str
    filename: str
    repo_type: str = "model"


def hub_cache_dir() -> Path:
    """The hub cache the Hugging Face libraries read now."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def is_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is in effect (as ``huggingface_hub`` read it, or patched)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def repo_fingerprint(repos: Sequence[tuple[str, str]]) -> str | None:
    """The commits the hub cache's ``refs/main`` names for each ``(repo_type, repo_id)``, joined;
    None if one is not cached (nothing downloaded yet). A commit names a repo's whole content."""
    commits = []
    for repo_type, repo_id in repos:
        ref = hub_cache_dir() / f"{repo_type}s--{repo_id.replace('/', '--')}" / "refs" / "main"
        if not ref.is_file():
            return None
        commits.append(f"{repo_type}:{repo_id}@{ref.read_text().strip()}")
    return " ".join(commits)


def missing_files(files: Sequence[HubFile]) -> list[HubFile]:
    """The ``files`` that are not in the current hub cache (no network access)."""
    from huggingface_hub import try_to_load_from_cache

    return [
        file
        for file in files
        if not isinstance(
            try_to_load_from_cache(file.repo_id, file.filename, repo_type=file.repo_type), str
        )
    ]


def require_cached(files: Sequence[HubFile], subject: str) -> None:
    """Offline, raise RuntimeError naming the ``files`` missing from the cache; online, nothing
    (the loading calls download what they need)."""
    if not is_offline():
        return
    missing = missing_files(files)
    if not missing:
        return
    by_repo: dict[tuple[str, str], list[str]] = {}
    for file in missing:
        by_repo.setdefault((file.repo_type, file.repo_id), []).append(file.filename)
    lines = "\n".join(
        f"  {kind} {repo}: {', '.join(names)}" for (kind, repo), names in by_repo.items()
    )
    raise RuntimeError(
        f"subject {subject!r}: HF_HUB_OFFLINE=1 and these hub files are not in the local cache "
        f"{hub_cache_dir()}:\n{lines}\n"
        "To fix: run once with network access (HF_HUB_OFFLINE unset) to download them, or set "
        "HF_HOME to a cache that has them, or use the offline control subject "
        "(--subject null-gpt2)."
    )


@contextmanager
def use_hub_cache(hub_dir: str | Path, *, offline: bool = True) -> Iterator[Path]:
    """Point the Hugging Face libraries at the hub cache ``hub_dir`` (and ``offline``) inside the
    ``with`` block, restoring both after. Changes process-wide state: not thread-safe."""
    from huggingface_hub import constants

    saved = constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE
    constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE = str(hub_dir), offline
    try:
        yield Path(hub_dir)
    finally:
        constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE = saved


def record_missing(folder: Path, filename: str) -> None:
    """Record in the cache that ``folder/filename`` does not exist on the hub, as
    ``huggingface_hub`` does after a 404 (``<repo>/.no_exist/<commit>/<path>``)."""
    snapshot = next(p for p in folder.parents if p.parent.name == "snapshots")
    marker = snapshot.parent.parent / ".no_exist" / snapshot.name / folder.relative_to(snapshot)
    marker.mkdir(parents=True, exist_ok=True)
    (marker / filename).touch()
