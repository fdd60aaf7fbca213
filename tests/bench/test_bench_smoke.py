"""Keeps bench/ from rotting: its parsers and report in unit tests, its seed in the test database, its
wrk script against a stub server, and (on PostgreSQL with wrk installed) one tiny real run."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from bench import run as bench_run
from bench import seed as bench_seed

ROOT = Path(__file__).resolve().parents[2]

WRK_OUTPUT = """\
Running 13s test @ http://127.0.0.1:40123/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    87.52ms   10.20ms   1.02s    90.00%
    Req/Sec   360.00     40.00   420.00     70.00%
  Latency Distribution
     50%   87.52ms
     75%  850.00us
     90%    1.02s
     99%    1.50m
  7780 requests in 13.00s, 1.20MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:    598.46
Transfer/sec:     94.50KB
"""

REPORT = {
    "kind": "click",
    "clock": "monotonic",
    "statuses": {"202": 7770, "429": 4, "500": 1},
    "sent": 7777,
    "answered": 7775,
    "active_seconds": 10.0,
    "wrk_requests": 7775,
    "wrk_duration_us": 13000000,
    "errors": {"connect": 0, "read": 3, "write": 0, "status": 5, "timeout": 2},
    "latency_us": {
        "min": 900.0,
        "mean": 87000.0,
        "max": 1020000.0,
        "p50": 87520.0,
        "p90": 99000.0,
        "p99": 150250.0,
    },
}


def with_report(text: str, report: dict) -> str:
    return text + bench_run.REPORT_PREFIX + json.dumps(report) + "\n"


# --- pure pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [("850.00us", 0.85), ("12.34ms", 12.34), ("1.02s", 1020.0), ("1.50m", 90_000.0), ("3s", 3000.0)],
)
def test_duration_ms(text, ms):
    assert bench_run.duration_ms(text) == pytest.approx(ms)


def test_duration_ms_rejects_garbage():
    with pytest.raises(ValueError):
        bench_run.duration_ms("fast")


def test_parse_wrk_text():
    parsed = bench_run.parse_wrk_text(WRK_OUTPUT)
    assert parsed["requests"] == 7780
    assert parsed["seconds"] == 13.0
    assert parsed["rps"] == 598.46
    assert parsed["p50_ms"] == 87.52
    assert parsed["p75_ms"] == 0.85
    assert parsed["p90_ms"] == 1020.0
    assert parsed["p99_ms"] == 90_000.0
    assert parsed["non_2xx_3xx"] == 5
    assert parsed["socket_errors"] == {"connect": 0, "read": 3, "write": 0, "timeout": 2}


def test_parse_wrk_text_without_errors_or_latency():
    parsed = bench_run.parse_wrk_text("  10 requests in 1.00s, 1.00KB read\nRequests/sec:     10.00\n")
    assert parsed["requests"] == 10
    assert parsed["non_2xx_3xx"] == 0
    assert parsed["p50_ms"] is None
    assert sum(parsed["socket_errors"].values()) == 0


def test_parse_lua_report():
    assert bench_run.parse_lua_report(with_report(WRK_OUTPUT, REPORT)) == REPORT
    assert bench_run.parse_lua_report(WRK_OUTPUT) is None


def test_cpu_seconds_counts_a_group_and_the_servers():
    """The CPU of a set of pids (here this process, made to work) and of the PostgreSQL and Redis
    servers, and its share per request."""
    me = {os.getpid()}
    before = bench_run.cpu_seconds({"server": me})
    assert set(before) == {"server", "postgres", "redis"}
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass
    after = bench_run.cpu_seconds({"server": me})
    assert after["server"] - before["server"] >= 0.05
    per = bench_run.cpu_per_request({"a": 1.0, "b": 2.0}, {"a": 1.5, "b": 2.0}, 1000)
    assert per == {"a": 500.0, "b": 0.0}
    assert bench_run.cpu_per_request(before, after, 0) == {}


def test_summarize_from_lua_report():
    m = bench_run.summarize(REPORT, WRK_OUTPUT, accepted_status=202, rows_landed=7770)
    assert m["rps"] == 777.5  # answered over the active window, not over wrk's whole -d
    assert m["p50_ms"] == 87.52
    assert m["p99_ms"] == 150.25
    assert m["requests"] == 7775
    assert m["non_2xx"] == 5
    assert m["accepted"] == 7770
    assert m["rows_landed"] == 7770
    assert m["in_flight_at_stop"] == 2
    assert m["socket_errors"] == 5
    assert m["statuses"] == {"202": 7770, "429": 4, "500": 1}
    assert "commissions_landed" not in m


def test_summarize_events_and_static():
    events = bench_run.summarize(
        {**REPORT, "statuses": {"201": 7775}},
        "",
        accepted_status=201,
        rows_landed=7775,
        commissions_landed=7775,
    )
    assert (events["accepted"], events["non_2xx"], events["commissions_landed"]) == (7775, 0, 7775)
    static = bench_run.summarize(
        {**REPORT, "statuses": {"200": 7775}}, "", accepted_status=None, rows_landed=None
    )
    assert static["accepted"] is None and static["rows_landed"] is None and static["non_2xx"] == 0


def test_summarize_falls_back_to_wrk_text():
    m = bench_run.summarize(None, WRK_OUTPUT, accepted_status=202, rows_landed=10)
    assert m["rps"] == 598.46
    assert m["p50_ms"] == 87.52
    assert m["non_2xx"] == 5
    assert m["accepted"] is None  # unknown without the per-status counts


def _results(rows_ok: bool = True) -> dict:
    drained = {**REPORT, "sent": REPORT["answered"]}
    click = bench_run.summarize(
        {**drained, "statuses": {"202": 7775}}, "", accepted_status=202, rows_landed=7775 if rows_ok else 7774
    )
    go = bench_run.summarize(
        {**drained, "statuses": {"302": 7775}}, "", accepted_status=302, rows_landed=7775
    )
    event = bench_run.summarize(
        {**drained, "statuses": {"201": 7775}},
        "",
        accepted_status=201,
        rows_landed=7775,
        commissions_landed=7775,
    )
    static = bench_run.summarize(
        {**drained, "statuses": {"200": 7775}}, "", accepted_status=None, rows_landed=None
    )
    return {
        "clicks": {"buffered": {"c16": click, "c64": click}, "unbuffered": {"c64": click}},
        "go": {"c16": go, "c64": go},
        "events": {"c16": event, "c64": event, "replay": {"exactly_once": True}},
        "limits": {"static_c64": static},
    }


def test_redirects_count_302_as_expected():
    go = _results()["go"]["c64"]
    assert (go["accepted"], go["non_2xx"]) == (7775, 0)


def test_checks():
    assert all(bench_run.checks(_results()).values())
    assert "go_c64_rows_match" in bench_run.checks(_results())
    failed = bench_run.checks(_results(rows_ok=False))
    assert failed["clicks_buffered_c16_rows_match"] is False
    assert failed["clicks_buffered_c16_drained"] is True
    undrained = _results()
    undrained["events"]["c64"] = {**undrained["events"]["c64"], "in_flight_at_stop": 3}
    assert bench_run.checks(undrained)["events_c64_drained"] is False
    assert "events_c16_commissions_match" not in bench_run.checks(_results(), events_attributed=False)
    replayed = _results()
    replayed["events"]["replay"] = {"exactly_once": False}
    assert bench_run.checks(replayed)["events_replay_exactly_once"] is False


def test_tracker_checks_and_targets():
    drained = {**REPORT, "sent": REPORT["answered"]}

    def figure(status, accepted_status, cpu):
        m = bench_run.summarize(
            {**drained, "statuses": {status: 7775}}, "", accepted_status=accepted_status, rows_landed=None
        )
        return {**m, "cpu_us_per_request": {"server": cpu}}

    results = {
        **_results(),
        "tracker": {
            "static_c64": figure("204", None, 40.0),
            "c64": figure("200", 200, 70.0),
            "not_modified_c64": figure("200", 304, 60.0),  # a 200 where a 304 was due
            "c64_server_cpu_vs_static": 1.75,
        },
    }
    checked = bench_run.checks(results)
    assert checked["tracker_static_c64_all_expected_status"] and checked["tracker_c64_all_expected_status"]
    assert checked["tracker_not_modified_c64_all_expected_status"] is False
    t = bench_run.targets(results)
    assert t["tracker_c64_rps"]["met"] is False  # 777.5 < 30,000
    assert t["tracker_c64_server_cpu_vs_static"] == {"target": "<= 2 x", "value": 1.75, "met": True}
    assert t["go_c64_rps_vs_clicks"]["met"] is True  # the same figure in _results()


def test_targets_and_percentile():
    results = _results()
    results["pages"] = {"pages": {"portal_dashboard": {"p95_ms": 81.0, "status": 200}}}
    t = bench_run.targets(results)
    assert t["clicks_c64_rps"]["met"] is False  # 777.5 < 6000
    assert t["portal_dashboard_p95"] == {"target": "< 80 ms", "value": 81.0, "met": False}
    assert t["payout_run_20k_seconds"]["met"] is None  # not measured
    values = [float(v) for v in range(1, 31)]
    assert bench_run.percentile(values, 50) == 15.0 and bench_run.percentile(values, 95) == 29.0
    assert bench_run.percentile([], 50) is None


def test_build_document_shape_and_no_secret():
    seed = {
        "program": "bench",
        "program_id": 1,
        "affiliates": 10,
        "clicks": 100,
        "secret": "sk_live_secret",
        "codes_file": "/x/codes.txt",
        "visitors_file": "/x/visitors.txt",
        "tables": {"click": "tracking_click"},
        "seconds": 0.1,
    }
    doc = bench_run.build_document(
        date="2026-01-01T00:00:00Z",
        commit="abc1234",
        dirty=False,
        machine={"cores": 2, "python": "3.11"},
        server={"buffered": {"kind": "granian"}},
        seed=seed,
        settings={"duration_s": 10},
        results=_results(),
        events_attributed=True,
    )
    assert list(doc) == [
        "date", "commit", "dirty", "machine", "server", "seed", "settings",
        "clicks", "go", "events", "limits", "targets", "checks",
    ]  # fmt: skip
    for key in ("rps", "p50_ms", "p99_ms", "requests", "non_2xx", "rows_landed", "accepted"):
        assert key in doc["clicks"]["buffered"]["c64"] and key in doc["events"]["c16"]
    assert "sk_live_secret" not in json.dumps(doc)


def test_parse_args_defaults_and_guards():
    full = bench_run.parse_args([])
    assert (full.duration, full.grace, full.server, full.workers, full.threads) == (15, 15, "granian", 3, 2)
    assert full.sections == [s for s in bench_run.SECTIONS if s != "scale"] and full.clicks == 1_000_000
    assert (full.webhook_commissions, full.webhook_pairs, full.scale) == (10_000, 3, None)
    assert (full.scale_clicks, full.scale_events, full.scale_affiliates) == (10_000_000, 300_000, 20_000)
    assert full.unbuffered == [64]
    quick = bench_run.parse_args(["--quick", "--only", "clicks,pages"])
    assert (quick.duration, quick.sections) == (2, ["clicks", "pages"])
    gunicorn = bench_run.parse_args(["--server", "gunicorn"])
    assert gunicorn.workers == 2 * (os.cpu_count() or 1) + 1
    scale = bench_run.parse_args(["--scale"])
    assert (scale.scale, scale.scale_clicks, scale.sections) == (
        100_000_000,
        100_000_000,
        ["events", "pages", "scale"],
    )
    assert bench_run.parse_args(["--scale-rows", "2000000"]).scale_clicks == 2_000_000
    for bad in (
        ["--db-name", "refapp"],
        ["--only", "nope"],
        ["--scale-db", "refapp_bench"],
        ["--only", "scale"],
        ["--scale", "10"],
    ):
        with pytest.raises(SystemExit):
            bench_run.parse_args(bad)  # would drop someone's real database, or is not a section


def test_server_commands():
    env = {"REFAPP_CLICK_BUFFER": "1"}
    granian = bench_run.Server(workers=2, threads=4, env=env, port=9, log_path=Path("x"))
    assert granian.command()[1:] == [
        "--interface", "wsgi", "refapp.wsgi:application", "--host", "127.0.0.1", "--port", "9",
        "--workers", "2", "--blocking-threads", "4", "--backpressure", "64",
    ]  # fmt: skip
    assert granian.describe()["click_buffer"] is True
    gunicorn = bench_run.Server(kind="gunicorn", workers=5, threads=1, env={}, port=9, log_path=Path("x"))
    assert "gunicorn" in gunicorn.command() and gunicorn.describe()["worker_class"] == "sync"
    assert bench_run.process_group_pids(os.getpgrp())  # this test's own group
    assert bench_run.memory_mb(os.getpid())["VmHWM"] > 0


def test_webhook_watch_delay_matches_the_app():
    from webhooks import watch

    assert bench_run.WEBHOOK_WATCH_S == watch.WATCH_SECONDS


def test_receiver_records_ids_signatures_and_duplicates():
    from standardwebhooks.webhooks import Webhook

    from bench.receiver import Receiver

    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    receiver = Receiver().start()
    receiver.secret = secret
    try:
        for webhook_id, key in (("msg_1", secret), ("msg_1", secret), ("msg_2", "whsec_" + "A" * 32)):
            body = json.dumps({"type": "commission.created", "data": {"id": "com_1"}})
            moment = datetime.now(UTC)
            headers = {
                "webhook-id": webhook_id,
                "webhook-timestamp": str(int(moment.timestamp())),
                "webhook-signature": Webhook(key).sign(webhook_id, moment, body),
                "content-type": "application/json",
            }
            request = urllib.request.Request(receiver.url, data=body.encode(), headers=headers, method="POST")
            with bench_run.OPENER.open(request, timeout=10) as resp:
                assert resp.status == 200
    finally:
        receiver.stop()
    arrivals = receiver.snapshot()
    assert [(a.webhook_id, a.type, a.object_id, a.signed) for a in arrivals] == [
        ("msg_1", "commission.created", "com_1", True),
        ("msg_1", "commission.created", "com_1", True),
        ("msg_2", "commission.created", "com_1", False),
    ]
    assert receiver.duplicates() == 1


def test_webhook_checks_and_cost_target():
    results = {
        "webhooks": {
            "events_cost_pct": 4.0,
            "duplicates_over_the_section": 0,
            "bad_signatures": 0,
            "delivery": {"exactly_once": True},
        }
    }
    assert bench_run.checks(results)["webhooks_delivered_exactly_once"] is True
    assert bench_run.targets(results)["webhooks_events_cost"]["met"] is True
    results["webhooks"]["delivery"]["exactly_once"] = False
    results["webhooks"]["events_cost_pct"] = 12.5
    assert bench_run.checks(results)["webhooks_delivered_exactly_once"] is False
    assert bench_run.targets(results)["webhooks_events_cost"]["met"] is False


def test_click_buffer_keys_match_the_app():
    from tracking import buffer

    assert bench_run.ClickBuffer.LIST_KEY == buffer.LIST_KEY
    assert bench_run.ClickBuffer.KEYS == (buffer.LIST_KEY, buffer.SEQ_KEY, buffer.EPOCH_KEY)


# --- the seed, in the test database (SQLite or PostgreSQL) -------------------------------------


@pytest.mark.django_db
def test_seed_creates_program_affiliates_rule_key_and_clicks(tmp_path):
    from affiliates.models import Affiliate, ApiKey
    from affiliates.services import hash_secret
    from commissions.models import CommissionRule
    from tracking.models import Click

    result = bench_seed.seed(affiliates=7, clicks=30, out_dir=tmp_path, slug="bench")

    assert result["affiliates"] == 7 and result["clicks"] == 30
    affiliates = list(Affiliate.objects.filter(program_id=result["program_id"]))
    assert len(affiliates) == 7
    assert len({a.public_id for a in affiliates}) == 7
    assert all(a.status == "active" and a.code_key == a.code.lower() and a.email_hash for a in affiliates)
    assert CommissionRule.objects.filter(
        program_id=result["program_id"], event_name="sale", rate_bp=2000
    ).exists()
    assert ApiKey.objects.get(key_hash=hash_secret(result["secret"])).mode == "live"
    assert Click.objects.filter(program_id=result["program_id"]).count() == 30
    codes = Path(result["codes_file"]).read_text().split()
    visitors = Path(result["visitors_file"]).read_text().split()
    assert sorted(codes) == sorted(a.code for a in affiliates)
    assert len(visitors) == 30
    assert set(Click.objects.values_list("visitor_id", flat=True)) == set(visitors)
    assert result["tables"] == {
        "click": "tracking_click",
        "event": "tracking_event",
        "commission": "commissions_commission",
    }


# --- the wrk script, against a stub server --------------------------------------------------------


class _Stub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bodies: list[bytes]
    lock: threading.Lock

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.lock:
            self.bodies.append(body)
        status = 201 if self.path == "/api/v1/events" else 202
        self._answer(status, b"{}")

    def do_GET(self):
        if self.path.startswith("/go/"):
            with self.lock:
                self.bodies.append(self.path.encode())
            self._answer(302, b"")
            return
        if self.path.startswith("/t.js"):
            asked = (self.path, self.headers.get("Accept-Encoding"), self.headers.get("If-None-Match"))
            with self.lock:
                self.bodies.append(json.dumps(asked).encode())
            if self.headers.get("If-None-Match"):
                self.send_response(304)
                self.end_headers()
                return
        self._answer(200, b"//js")

    def _answer(self, status, payload):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_server():
    handler = type("Handler", (_Stub,), {"bodies": [], "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.bodies
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)")
@pytest.mark.parametrize(
    ("kind", "status"), [("click", 202), ("event", 201), ("go", 302), ("tracker", 200), ("tracker304", 304)]
)
def test_lua_script_counts_every_request_and_drains(stub_server, tmp_path, kind, status):
    url, bodies = stub_server
    codes = tmp_path / "codes.txt"
    codes.write_text("Bench000001\nBench000002\n")
    visitors = tmp_path / "visitors.txt"
    visitors.write_text("seedv0000000001\n")
    seed = {
        "program": "bench",
        "secret": "sk_live_smoke",
        "clicks": 1,
        "codes_file": str(codes),
        "visitors_file": str(visitors),
    }
    bench = bench_run.Bench(
        argparse.Namespace(wrk_threads=2), wrk=shutil.which("wrk"), seed=seed, counter=None, nonce="x"
    )
    bench.tracker = {"path": "/t.js?v=abc123", "etag": '"abc123-br"'}
    started = time.monotonic()
    report, stdout = bench.run_wrk(SimpleNamespace(url=url), kind, 4, 1, 20, "smoke")
    # Once every thread has drained, the runner ends wrk instead of idling through its 21 s -d.
    assert time.monotonic() - started < 15
    assert report is not None, stdout
    assert report["kind"] == kind and report["clock"] == "monotonic"
    assert report["sent"] == report["answered"] > 0  # drained: nothing left in flight at the end
    assert report["statuses"] == {str(status): report["answered"]}
    # What the server received is exactly what wrk counted, and every request was unique.
    assert len(bodies) == report["answered"]
    if kind.startswith("tracker"):
        etag = '"abc123-br"' if kind == "tracker304" else None
        assert {tuple(json.loads(b)) for b in bodies} == {("/t.js?v=abc123", "gzip, deflate, br, zstd", etag)}
        return
    if kind == "go":
        paths = [b.decode() for b in bodies]
        assert len(set(paths)) == len(paths)  # a unique query string each
        assert all(
            p.startswith(("/go/bench/Bench000001?b=smoke-", "/go/bench/Bench000002?b=smoke-")) for p in paths
        )
        return
    key = "visitor_id" if kind == "click" else "order_id"
    payloads = [json.loads(b) for b in bodies]
    assert len({p[key] for p in payloads}) == len(payloads)
    if kind == "click":
        assert {p["ref"] for p in payloads} <= {"Bench000001", "Bench000002"}
        assert all(p["program"] == "bench" for p in payloads)
    else:
        assert all(p["visitor_id"] == "seedv0000000001" and p["amount_cents"] == 9900 for p in payloads)
    m = bench_run.summarize(report, stdout, accepted_status=status, rows_landed=len(bodies))
    assert m["rps"] > 0 and m["accepted"] == m["rows_landed"] and m["in_flight_at_stop"] == 0


# --- one real run: PostgreSQL, Redis, gunicorn, wrk ------------------------------------------------


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _run_bench(command: list[str], *, timeout: int) -> subprocess.CompletedProcess:
    """Run the bench; on a timeout interrupt it (SIGINT), so that it stops the servers and workers it
    started, as it does when interrupted by hand, before the test fails. A plain kill would leave
    them running, and they would take the next run's tasks."""
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        pytest.fail(f"the bench did not finish in {timeout} s:\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


@pytest.mark.postgres
def test_bench_end_to_end(tmp_path):
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        pytest.skip("the end-to-end bench needs PostgreSQL (DATABASE_URL is not a postgres:// URL)")
    if shutil.which("wrk") is None:
        pytest.skip("the end-to-end bench needs wrk (apt-get install -y wrk)")
    db = urlsplit(database_url)
    redis = urlsplit(os.environ.get("REDIS_URL", "") or "redis://127.0.0.1:6379/0")
    redis_host, redis_port = redis.hostname or "127.0.0.1", redis.port or 6379
    if not _reachable(redis_host, redis_port):
        pytest.skip(f"the end-to-end bench needs Redis at {redis_host}:{redis_port}")
    # A Redis database apart from the suite's, so the bench's rate-limit counters never meet its tests,
    # and apart from a full bench's (3), whose workers would take this run's payout tasks.
    redis_db = 14 if redis.path.strip("/") == "15" else 15
    # The bench drops and recreates its databases: named after the suite's own, so that two suites
    # on one PostgreSQL (two checkouts, or CI beside a developer's run) never drop each other's.
    suffix = re.sub(r"[^a-z0-9_]", "_", db.path.strip("/").lower()) or "default"
    command = (
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "clicks,tracker,events,webhooks,pages,csv,payouts",
         "--affiliates", "10", "--clicks", "100", "--duration", "1", "--unbuffered-conc", "", "--pause", "0.1",
         "--pg-url", f"postgresql://{db.netloc}", "--db-name", f"refapp_bench_smoke_{suffix}",
         "--scale-db", f"refapp_bench_smoke_scale_{suffix}", "--scale-affiliates", "20", "--scale-clicks", "2000",
         "--scale-events", "200", "--csv-rows", "50", "--page-requests", "2", "--page-warmups", "1",
         "--no-explain", "--redis-url", f"redis://{redis_host}:{redis_port}/{redis_db}",
         "--payout-affiliates", "15", "--payout-db", f"refapp_bench_smoke_payouts_{suffix}",
         "--webhook-commissions", "20", "--webhook-pairs", "1", "--webhook-rate", "50",
         "--out-dir", str(tmp_path)]
    )  # fmt: skip
    proc = _run_bench(command, timeout=420)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["server"]["buffered"]["kind"] == "granian" and doc["server"]["buffered"]["click_buffer"]
    for conc in ("c16", "c64"):
        for m in (doc["clicks"]["buffered"][conc], doc["events"][conc]):
            assert m["rps"] > 0, (conc, m)
            assert m["non_2xx"] == 0, (conc, m)
            assert m["rows_landed"] == m["accepted"] > 0, (conc, m)
        assert doc["clicks"]["buffered"][conc]["drain_seconds"] is not None
    assert doc["events"]["c64"]["commissions_landed"] == doc["events"]["c64"]["accepted"]
    # The tracker in Brotli from the fast path, its 304, and the bare 204 beside them.
    tracker = doc["tracker"]
    assert tracker["content_encoding"] == "br" and tracker["path"].startswith("/t.js?v=")
    assert tracker["bytes"]["br"] < tracker["bytes"]["gzip"] < tracker["bytes"]["identity"]
    assert set(tracker["c64"]["statuses"]) == {"200"} and set(tracker["not_modified_c64"]["statuses"]) == {
        "304"
    }
    assert tracker["static_c64"]["rps"] > 0 and tracker["c64_server_cpu_vs_static"] is not None
    # Where each figure's CPU went: the server's processes, the drainer beside it, the database,
    # Redis and wrk, per answered request.
    cpu = doc["clicks"]["buffered"]["c16"]["cpu_us_per_request"]
    assert set(cpu) == {"server", "drain", "postgres", "redis", "wrk"}, cpu
    assert cpu["server"] > 0 and cpu["wrk"] > 0, cpu
    assert doc["events"]["c16"]["cpu_us_per_request"]["postgres"] > 0
    assert doc["events"]["replay"]["exactly_once"] is True
    # Webhooks: the events rate with an endpoint on and off, and 20 commissions delivered once each
    # by a real Celery worker to the receiver on loopback, signed.
    webhooks = doc["webhooks"]
    assert webhooks["events_c16"]["rps_off"][0] > 0 and webhooks["events_c16"]["rps_on"][0] > 0
    assert webhooks["events_cost_pct"] is not None
    delivery = webhooks["delivery"]
    assert delivery["commissions"] == delivery["delivered"] == 20 and delivery["exactly_once"], delivery
    assert delivery["delay_p50_ms"] > 0 and delivery["delay_p99_ms"] >= delivery["delay_p50_ms"]
    assert webhooks["bad_signatures"] == 0 and webhooks["duplicates_over_the_section"] == 0
    assert webhooks["worker_log_errors"] == [], webhooks["worker_log_errors"]
    pages = doc["pages"]["pages"]
    assert set(pages) == {
        "panel_dashboard_30d",
        "panel_dashboard_365d",
        "affiliates_by_earnings",
        "portal_dashboard",
    }
    assert all(p["status"] == 200 and p["p95_ms"] > 0 for p in pages.values()), pages
    assert doc["pages"]["seed"]["clicks"] == 2000
    assert doc["csv"]["status"] == 200 and doc["csv"]["rows"] == 50
    # Sent by a real Celery worker through Redis, against the fake Stripe.
    payouts = doc["payouts"]
    assert payouts["paid"] == payouts["transfers_at_fake_stripe"] == 15, payouts
    assert payouts["worker_log_errors"] == [] and payouts["peak_rss_mb"] > 0
    assert all(doc["checks"].values()), doc["checks"]
    assert json.loads(Path(doc["settings"]["output"]).read_text()) == doc
