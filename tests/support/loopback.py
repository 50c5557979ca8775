"""A throwaway HTTP file server on 127.0.0.1 for tests that must never touch the network.

Serves files from a directory and/or in-memory bytes on an ephemeral port,
from a background thread, and joins every thread it started when closed::

    with LoopbackServer(files={"resnet18-abcd1234.pth": data}) as server:
        download(spec, url=server.url("resnet18-abcd1234.pth"))

``throttle`` (seconds slept after each ``chunk_size`` block) makes a download
slow enough to cancel from another thread; ``fail`` maps a path to an HTTP
status to answer instead of the file.  ``closed_port()`` gives a port on which
nothing listens, for "connection refused" tests.
"""

from __future__ import annotations

import http.server
import os
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

__all__ = ["LoopbackServer", "closed_port", "loopback"]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # ThreadingMixIn then tracks handler threads ...
    block_on_close = True  # ... and server_close() joins them

    def __init__(self, owner: LoopbackServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-body is normal here (cancel tests): stay quiet."""


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    timeout = 10.0  # a stuck client cannot hold a handler thread (and close()) forever

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        """Silence the per-request stderr line."""

    def _answer(self, *, send_body: bool) -> None:
        owner = self.server.owner
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        owner._record(path)
        status = owner.fail.get(path)
        if status is not None:
            self.send_error(status)
            return
        data = owner._lookup(path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if send_body:
            self._send_body(data, owner)

    def _send_body(self, data: bytes, owner: LoopbackServer) -> None:
        view = memoryview(data)
        try:
            for start in range(0, len(view), owner.chunk_size):
                if owner._stopping.is_set():
                    return
                self.wfile.write(view[start:start + owner.chunk_size])
                self.wfile.flush()
                if owner.throttle:
                    owner._stopping.wait(owner.throttle)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            pass  # the client went away (e.g. a cancelled download)


class LoopbackServer:
    """Serve ``root`` (a directory) and ``files`` (path -> bytes) on 127.0.0.1."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        files: Mapping[str, bytes] | None = None,
        *,
        chunk_size: int = 64 * 1024,
        throttle: float = 0.0,
        fail: Mapping[str, int] | None = None,
    ) -> None:
        self.root = Path(root).resolve() if root is not None else None
        self.files: dict[str, bytes] = dict(files or {})
        self.chunk_size = max(1, chunk_size)
        self.throttle = throttle
        self.fail: dict[str, int] = dict(fail or {})
        self.requests: list[str] = []  # paths asked for, in order
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------
    def start(self) -> LoopbackServer:
        if self._server is not None:
            raise RuntimeError("loopback server already started")
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"loopback-http-{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and join the server thread and every handler thread."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # throttled handlers stop writing at once
        server.shutdown()
        server.server_close()  # joins handler threads (block_on_close)
        if thread is not None:
            thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- addresses -------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("loopback server is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def url(self, path: str) -> str:
        """The URL that serves ``path`` (relative to the root / a ``files`` key)."""
        return self.base_url + urllib.parse.quote(path.lstrip("/"))

    # -- used by the handler thread -------------------------------------
    def _record(self, path: str) -> None:
        with self._lock:
            self.requests.append(path)

    def _lookup(self, path: str) -> bytes | None:
        if path in self.files:
            return self.files[path]
        if self.root is None or not path:
            return None
        candidate = (self.root / path).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate.read_bytes()


def closed_port() -> int:
    """A loopback port on which nothing listens (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])



@pytest.fixture
def loopback() -> Iterator[Callable[..., LoopbackServer]]:
    """``loopback(root=None, files=None, **options) -> LoopbackServer``, all closed at teardown.

    tests/conftest.py makes it available to every test.
    Teardown fails the test if a server thread is still alive.
    """
    servers: list[LoopbackServer] = []

    def start(root: str | os.PathLike[str] | None = None,
              files: Mapping[str, bytes] | None = None, **options: Any) -> LoopbackServer:
        server = LoopbackServer(root, files, **options)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.close()
    leaked = [t.name for t in threading.enumerate() if t.name.startswith("loopback-http")]
    assert not leaked, f"loopback server threads left running: {leaked}"
