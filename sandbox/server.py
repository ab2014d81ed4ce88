"""Run a stand-in's WSGI app on a real socket in a background thread (HTTP or HTTPS)."""

from __future__ import annotations

import logging
import ssl
import tempfile
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, make_server


@dataclass
class RunningServer:
    url: str
    server: BaseWSGIServer
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(app, *, host: str = "127.0.0.1", port: int = 0, tls: bool = False) -> RunningServer:
    """Start `app` on host:port (0 picks a free port); `tls` serves HTTPS with a certificate
    for localhost/127.0.0.1 issued by the sandbox CA (see `ca_bundle`)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    context = _server_context() if tls else None
    server = make_server(host, port, app, threaded=True, ssl_context=context)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox", daemon=True
    )
    thread.start()
    scheme = "https" if tls else "http"
    return RunningServer(f"{scheme}://{host}:{server.server_port}", server, thread)


@cache
def _authority():
    import trustme

    return trustme.CA()


@cache
def ca_bundle() -> str:
    """Path of a PEM file with the sandbox CA: give it to clients as `verify=`."""
    path = Path(tempfile.mkdtemp(prefix="coi-sandbox-ca-")) / "ca.pem"
    _authority().cert_pem.write_to_path(str(path))
    return str(path)


def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _authority().issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


class Peer:
    """What every stand-in shares: start on a free port (or the one given), stop, use as a
    context manager, and the root URL while running. Subclasses set `app` and `TLS`."""

    TLS = False
    app = None
    _server: RunningServer | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0):
        if self._server is None:
            self._server = serve(self.app, host=host, port=port, tls=self.TLS)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._server.url
