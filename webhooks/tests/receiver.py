"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 in a thread, that records what it
receives and answers as scripted, and can be stopped (connections refused) and started again on
the same port."""

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

# Scripted answers: an HTTP status, or KILL to drop the connection mid-request without answering
# (the receiver dies while the delivery is in flight).
KILL = "kill"
# A test certificate authority (``ca.pem``) and the certificate it issued for hooks.acme.test
# (``server.pem``, ``server.key``), valid until 2126: made once with openssl for these tests.
TLS = Path(__file__).parent / "tls"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Receiver:
    port: int = 0
    answers: list[Any] = field(default_factory=list)  # consumed in order; then `default`
    default: Any = 200
    received: list[Received] = field(default_factory=list)
    redirect_to: str = ""
    tls: bool = False  # https, with the hooks.acme.test certificate
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d/tripod-webhooks" % self.port

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                answer = receiver.answers.pop(0) if receiver.answers else receiver.default
                if answer == KILL:
                    self.close_connection = True
                    self.connection.shutdown(2)  # no status line: the client sees the peer go away
                    return
                self.send_response(int(answer))
                if 300 <= int(answer) < 400:
                    self.send_header("Location", receiver.redirect_to or "http://127.0.0.1:9/elsewhere")
                text = b"ok" if int(answer) < 300 else b"receiver says no: " + str(answer).encode()
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(TLS / "server.pem", TLS / "server.key")
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: connections to the port are refused until ``start``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()
