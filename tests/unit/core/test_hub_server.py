"""The hub cache served on 127.0.0.1: whole files, byte ranges, refuses what it does not hold."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from huggingface_hub import constants, hf_hub_url

from synthact.core.hub_server import cached_file, serve_hub_cache

COMMIT = "c" * 40


@pytest.fixture
def hub_dir(tmp_path: Path) -> Path:
    """A hub cache holding ``org/repo``'s ``folder/data.bin`` (bytes 0..99) at ``main``."""
    repo = tmp_path / "models--org--repo"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    folder = repo / "snapshots" / COMMIT / "folder"
    folder.mkdir(parents=True)
    (folder / "data.bin").write_bytes(bytes(range(100)))
    (tmp_path / "secret.txt").write_text("outside the snapshots")
    return tmp_path


def test_serves_whole_files_and_byte_ranges_at_the_hub_url(hub_dir: Path) -> None:
    saved = constants.ENDPOINT
    with serve_hub_cache(hub_dir) as endpoint:
        assert endpoint.startswith("http://127.0.0.1:")
        url = hf_hub_url("org/repo", "folder/data.bin")
        assert url == f"{endpoint}/org/repo/resolve/main/folder/data.bin"
        assert requests.get(url, timeout=5).content == bytes(range(100))
        part = requests.get(url, headers={"Range": "bytes=8-11"}, timeout=5)
        assert (part.status_code, part.content) == (206, bytes([8, 9, 10, 11]))
        by_commit = requests.get(url.replace("/main/", f"/{COMMIT}/"), timeout=5)
        assert by_commit.content == bytes(range(100))
    assert saved == constants.ENDPOINT
    assert hf_hub_url("org/repo", "x").startswith(saved)


@pytest.mark.parametrize(
    "path",
    [
        "/org/repo/resolve/main/folder/absent.bin",
        "/org/other/resolve/main/folder/data.bin",
        "/org/repo/resolve/main/../../../../secret.txt",
        "/org/repo/tree/main/folder",
    ],
)
def test_anything_else_is_not_found(hub_dir: Path, path: str) -> None:
    with serve_hub_cache(hub_dir) as endpoint:
        assert requests.get(endpoint + path, timeout=5).status_code == 404


def test_cached_file_stays_inside_the_snapshots(hub_dir: Path) -> None:
    assert cached_file(hub_dir, "org/repo", "main", "folder/data.bin").read_bytes()[:2] == b"\0\1"
    assert cached_file(hub_dir, "org/repo", "main", "../../../secret.txt") is None
