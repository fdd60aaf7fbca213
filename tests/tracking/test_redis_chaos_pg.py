"""Chaos: Redis dies for about ten seconds in the middle of a click load, then comes back.

Every click and redirect is answered (202, 302), and every accepted click reaches PostgreSQL: the ones
Redis took before it died through its append-only file and the drain, the ones sent while it was
down by the direct insert. The test starts its own redis-server on a free port: the machine's Redis is
never touched. It runs with appendonly and fsync always, because the click buffer's durability is
Redis's (tracking/buffer.py): without persistence a killed Redis loses what it held, by design.
"""

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import redis
from django.core.handlers.wsgi import LimitedStream
from django.db import connection, connections

from refapp import ratelimit
from tests.factories import AffiliateFactory, ProgramFactory
from tracking import buffer
from tracking.models import Click

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs the redis-server binary"),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="needs PostgreSQL (DATABASE_URL)",
    ),
]
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
THREADS = 4
OUTAGE_SECONDS = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    def __init__(self, port: int, directory: str):
        self.port, self.dir, self.proc = port, directory, None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir, "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                if probe.ping():
                    return
            except redis.exceptions.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(free_port(), str(tmp_path))
    server.start()
    yield server
    server.kill()


@pytest.fixture
def web(settings, own_redis):
    """refapp.wsgi (the fast path in front of Django) served by threads, on the test's Redis."""
    assert connection.vendor == "postgresql"
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    settings.REDIS_URL = url
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    settings.REFAPP_CLICK_BUFFER = True
    settings.REFAPP_REDIS_RETRY_SECONDS = 1
    settings.REFAPP_RATE_LIMITS = {**settings.REFAPP_RATE_LIMITS, "click": 100_000, "go": 100_000}
    ratelimit.redis_reset()
    from refapp.wsgi import application

    def app(environ, start_response):
        # wsgiref hands over the raw socket; production servers end the input at Content-Length.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"] = LimitedStream(environ["wsgi.input"], length)
        try:
            return list(application(environ, start_response))
        finally:
            connections.close_all()  # one thread per request: leave no connection behind

    server = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    ratelimit.redis_reset()


def test_clicks_survive_redis_dying_mid_load(web, own_redis):
    program = ProgramFactory(slug="acme", website="https://acme.example")
    AffiliateFactory(program=program, code="JOHN")
    stop = threading.Event()
    outage = {"from": float("inf"), "to": float("inf")}
    answers: list[tuple[float, int, str]] = []  # (time, status, visitor id)
    lock = threading.Lock()

    def load(worker: int) -> None:
        for i in range(10_000):
            if stop.is_set():
                return
            if i % 5 == 4:  # a redirect link: the visitor id comes back in the Location
                request = urllib.request.Request(f"{web}/go/acme/JOHN", headers={"User-Agent": UA})
            else:
                body = {"program": "acme", "ref": "JOHN", "visitor_id": f"chaos-{worker}-{i:05d}"}
                request = urllib.request.Request(
                    f"{web}/api/v1/track/click", data=json.dumps(body).encode(), headers={"User-Agent": UA}
                )
            try:
                response = urllib.request.urlopen(request, timeout=10)  # noqa: S310 - our own server
                status, location = response.status, ""
                payload = response.read()
            except urllib.error.HTTPError as exc:  # 302 is not followed (see _NoRedirect)
                status, location, payload = exc.code, exc.headers.get("Location", ""), b""
            if status == 302:
                visitor = parse_qs(urlsplit(location).query)["refapp_vid"][0]
            else:
                visitor = json.loads(payload)["visitor_id"] if status == 202 else ""
            with lock:
                answers.append((time.monotonic(), status, visitor))
            time.sleep(0.03)

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    urllib.request.install_opener(urllib.request.build_opener(_NoRedirect))
    workers = [threading.Thread(target=load, args=(n,)) for n in range(THREADS)]
    try:
        for worker in workers:
            worker.start()
        time.sleep(2)
        outage["from"] = time.monotonic()
        own_redis.kill()
        time.sleep(OUTAGE_SECONDS)
        own_redis.start()  # same port, same directory: the append-only file brings back the buffer
        outage["to"] = time.monotonic()
        time.sleep(2.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
        urllib.request.install_opener(None)

    statuses = {status for _, status, _ in answers}
    assert statuses <= {202, 302}, statuses
    during = [a for a in answers if outage["from"] < a[0] < outage["to"]]
    after = [a for a in answers if a[0] > outage["to"] + 1.5]
    assert len(answers) >= 200 and len(during) >= 50 and after, (len(answers), len(during), len(after))
    accepted = {visitor for _, _, visitor in answers}
    assert len(accepted) == len(answers)

    while buffer.drain():
        pass
    assert buffer.pending() == 0
    stored = list(Click.objects.values_list("visitor_id", flat=True))
    assert set(stored) == accepted  # none lost, none invented
    # A push whose connection broke after it was sent may also have reached Redis's file: that click
    # is stored twice (tracking/buffer.py). SIGKILL makes that window tiny; allow for it, never a loss.
    assert len(stored) - len(accepted) <= 2
