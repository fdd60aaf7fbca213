import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Receiver:
    """A loopback HTTP server on a port the OS picks: records every request, answers the statuses
    queued in `answers` (then 200)."""

    def __init__(self, *, keep_alive: bool = False):
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.connections: set[tuple[str, int]] = set()  # the client addresses requests came from
        self.answers: list[int] = []
        self.arrived = threading.Event()  # set when a request has come in
        self.hold: threading.Event | None = None  # when set, answers wait for it
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.connections.add(self.client_address[:2])
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.arrived.set()
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                status = receiver.answers.pop(0) if receiver.answers else 200
                payload = b"ok" if status < 300 else b"boom " * 400
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _no_deliver_due_flag():
    """Each test starts and ends with no deliver_due task marked as waiting (webhooks/queued.py)."""
    from webhooks import queued

    queued.unmark()
    yield
    queued.unmark()


@pytest.fixture
def receiver(settings):
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def keep_alive_receiver(settings):
    """A receiver speaking HTTP/1.1: it keeps a connection open between requests, as most do."""
    settings.REFAPP_WEBHOOKS_ALLOW_PRIVATE = True
    server = Receiver(keep_alive=True)
    yield server
    server.close()
