"""A local hub cache served over HTTP on 127.0.0.1, for loaders that read hub files without
``huggingface_hub``'s download functions.

SAELens reads a Gemma Scope 2 SAE's tensor shapes from its ``params.safetensors`` header by HTTP
range requests to the file's hub URL, which ``HF_HUB_OFFLINE`` does not cover. `serve_hub_cache`
answers such requests from a hub cache (the standard layout, see `synthact.core.hub_cache`)
and points ``huggingface_hub``'s endpoint at it inside the ``with`` block, so that the loader runs
unmodified with no network.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from huggingface_hub import constants

_RESOLVE = re.compile(r"/(?P<repo>[^?]+?)/resolve/(?P<revision>[^/]+)/(?P<filename>[^?]+)")
_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


@contextmanager
def serve_hub_cache(hub_dir: str | Path) -> Iterator[str]:
    """Serve ``hub_dir``'s files at ``http://127.0.0.1:PORT/{repo_id}/resolve/{revision}/{file}``
    and make it ``huggingface_hub``'s endpoint inside the ``with`` block; yields the endpoint.
    Changes process-wide state: not thread-safe."""
    handler = partial(_HubFileHandler, hub_dir=Path(hub_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_port}"
    saved = constants.ENDPOINT, constants.HUGGINGFACE_CO_URL_TEMPLATE
    constants.ENDPOINT = endpoint
    constants.HUGGINGFACE_CO_URL_TEMPLATE = endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    try:
        yield endpoint
    finally:
        constants.ENDPOINT, constants.HUGGINGFACE_CO_URL_TEMPLATE = saved
        server.shutdown()
        server.server_close()
        thread.join()


def cached_file(hub_dir: Path, repo_id: str, revision: str, filename: str) -> Path | None:
    """The file of a hub cache at ``repo_id``, ``revision`` (a ref or a commit), ``filename``;
    None when the cache does not hold it."""
    repo = (hub_dir / ("models--" + repo_id.replace("/", "--"))).resolve()
    ref = repo / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision
    path = (repo / "snapshots" / commit / filename).resolve()
    if repo / "snapshots" not in path.parents or not path.is_file():
        return None
    return path


class _HubFileHandler(BaseHTTPRequestHandler):
    """GET of a hub file, whole (200) or one byte range (206); 404 for anything else."""

    def __init__(self, *args, hub_dir: Path, **kwargs):
        self.hub_dir = hub_dir
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        match = _RESOLVE.fullmatch(self.path)
        path = cached_file(self.hub_dir, *map(unquote, match.groups())) if match else None
        if path is None:
            self.send_error(404, "not in the served hub cache")
            return
        size = path.stat().st_size
        byte_range = _RANGE.fullmatch(self.headers.get("Range", ""))
        first, last = (int(byte_range[1]), int(byte_range[2])) if byte_range else (0, size - 1)
        with path.open("rb") as file:
            file.seek(first)
            data = file.read(max(0, min(last, size - 1) - first + 1))
        self.send_response(206 if byte_range else 200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: no line per request on stderr."""
