"""A webhook receiver on loopback for the benchmark: records every delivery it is sent.

Each POST is answered 200 at once; the receiver keeps the `webhook-id`, the arrival time (wall
clock, comparable with the database's timestamps on the same machine), the event type and the
object's id from the body, and whether the Standard Webhooks signature verified with the
endpoint's secret (set once the endpoint exists).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Arrival:
    webhook_id: str
    at: float  # time.time()
    type: str
    object_id: str
    signed: bool | None  # None: no secret to check with


class Receiver:
    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.lock = threading.Lock()
        self.secret: str | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.time()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.record(body, dict(self.headers.items()), at)

            def log_message(self, format, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def record(self, body: bytes, headers: dict[str, str], at: float) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            doc = json.loads(body)
            event_type, object_id = doc.get("type", ""), (doc.get("data") or {}).get("id", "")
        except (ValueError, AttributeError):
            event_type, object_id = "", ""
        signed = None
        if self.secret:
            from standardwebhooks.webhooks import Webhook, WebhookVerificationError

            try:
                Webhook(self.secret).verify(body, lowered)
                signed = True
            except WebhookVerificationError:
                signed = False
        arrival = Arrival(lowered.get("webhook-id", ""), at, event_type, object_id, signed)
        with self.lock:
            self.arrivals.append(arrival)

    def snapshot(self) -> list[Arrival]:
        with self.lock:
            return list(self.arrivals)

    def duplicates(self) -> int:
        """Deliveries of a message id already received (a retry after a 2xx would be one)."""
        counts = Counter(a.webhook_id for a in self.snapshot())
        return sum(n - 1 for n in counts.values() if n > 1)
