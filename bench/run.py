"""Benchmark of refapp at scale (issue 5) against a production-style server on loopback.

    .venv/bin/python bench/run.py [--only clicks,go,tracker,events,pages,csv,payouts,limits] [--quick] ...

It sets everything up itself and always stops what it started. Sections (all by default):

  clicks   POST /api/v1/track/click at 16 and 64 connections with the Redis click buffer on and a
           `drain_clicks --follow` process beside the server (rows counted once the buffer drained,
           and how long that took), plus the unbuffered path at 64 for comparison
  go       GET /go/<program>/<code> redirects (302), buffered too
  tracker  GET /t.js?v=HASH as a browser asks for it (Brotli), its 304 revalidation, and GET /livez
           (the bare 204) side by side on the same server, at 64
  events   POST /api/v1/events with 1,000,000 clicks in the table, at 16 and 64, and a replay check
  webhooks outgoing webhooks (issue 17): the events rate at 16 with an endpoint subscribed to
           commission.created and with none, in alternated pairs (the worker stopped during them,
           then one pair with it delivering); then 10,000 commissions delivered
           by a real Celery worker to a receiver on loopback: each exactly once, and the delay from
           the commission's creation to its arrival (p50, p99)
  pages    p50/p95 of the panel and portal dashboards and the affiliates list over 10 million clicks
           (database refapp_bench_scale, seeded once and reused), with EXPLAIN of each slowest query
  csv      a streamed 1,000,000-row commissions export: time and the web process's peak memory
  payouts  a payout run for 20,000 affiliates against the fake Stripe: time and peak memory
  limits   the same server answering GET /livez (a static 204) at 64, and pgbench single-row INSERTs at 64

and prints one JSON document on stdout (progress goes to stderr), also written to
var/bench/<UTC timestamp>.json. Load measurements check that the rows that landed equal the accepted
responses. Exit status: 0 when every check holds, 1 when one does not, 2 when the benchmark could not
run. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LUA_SCRIPT = ROOT / "bench" / "lua" / "bench.lua"
SEED_SCRIPT = ROOT / "bench" / "seed.py"
SCALE_SCRIPT = ROOT / "bench" / "scale.py"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
REPORT_PREFIX = "REFAPP_BENCH_REPORT "
DB_NAME_RE = re.compile(r"^refapp_bench[a-z0-9_]{0,40}$")  # never drop a database not made for this
CONCURRENCIES = (16, 64)
TAG_RE = re.compile(r"^[A-Za-z0-9-]{1,40}$")  # goes into visitor and order ids
READY_TIMEOUT_S = 120  # a busy shared machine can take more than 30 s to start granian
SETTLE_TIMEOUT_S = 30
WRK_TIMEOUT = "30s"  # a response slower than this would drop out of wrk's latency histogram


class BenchError(Exception):
    """The benchmark could not run (missing tool, database unreachable, server did not start…)."""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- Parsing wrk's output ---------------------------------------------------------------------

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(us|ms|s|m|h)$")


def duration_ms(text: str) -> float:
    """wrk's human durations ("850.00us", "12.34ms", "1.02s", "1.50m") in milliseconds."""
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_wrk_text(text: str) -> dict[str, Any]:
    """The figures of wrk's own summary (run with --latency). Missing figures stay None."""
    out: dict[str, Any] = {
        "requests": None,
        "seconds": None,
        "rps": None,
        "p50_ms": None,
        "p75_ms": None,
        "p90_ms": None,
        "p99_ms": None,
        "non_2xx_3xx": 0,
        "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0},
    }
    for raw in text.splitlines():
        line = raw.strip()
        if match := re.match(r"^(50|75|90|99)(?:\.0+)?%\s+(\S+)$", line):
            out[f"p{match.group(1)}_ms"] = round(duration_ms(match.group(2)), 3)
        elif match := re.match(r"^(\d+) requests in ([0-9.]+(?:us|ms|s|m|h)),", line):
            out["requests"] = int(match.group(1))
            out["seconds"] = round(duration_ms(match.group(2)) / 1000, 3)
        elif match := re.match(r"^Requests/sec:\s+([0-9.]+)", line):
            out["rps"] = float(match.group(1))
        elif match := re.match(r"^Non-2xx or 3xx responses:\s+(\d+)", line):
            out["non_2xx_3xx"] = int(match.group(1))
        elif match := re.match(
            r"^Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", line
        ):
            keys = ("connect", "read", "write", "timeout")
            out["socket_errors"] = {k: int(v) for k, v in zip(keys, match.groups(), strict=True)}
    return out


def parse_lua_report(text: str) -> dict[str, Any] | None:
    """The JSON line bench.lua's done() prints, or None when it is missing."""
    for line in text.splitlines():
        if line.startswith(REPORT_PREFIX):
            return json.loads(line[len(REPORT_PREFIX) :])
    return None


def summarize(
    report: dict[str, Any] | None,
    wrk_text: str,
    *,
    accepted_status: int | None,
    rows_landed: int | None,
    commissions_landed: int | None = None,
) -> dict[str, Any]:
    """One measurement's figures, from the Lua report (exact counts) or, failing that, wrk's text."""
    text = parse_wrk_text(wrk_text)
    if report is None:
        # No per-status counts: only wrk's own figures, and nothing to compare rows with.
        requests = text["requests"] or 0
        result = {
            "rps": text["rps"] or 0.0,
            "p50_ms": text["p50_ms"],
            "p99_ms": text["p99_ms"],
            "requests": requests,
            "non_2xx": text["non_2xx_3xx"],
            "rows_landed": rows_landed,
            "accepted": None,
            "seconds": text["seconds"],
            "in_flight_at_stop": None,
            "socket_errors": sum(text["socket_errors"].values()),
            "statuses": {},
        }
    else:
        statuses = {int(code): int(count) for code, count in report["statuses"].items()}
        answered = int(report["answered"])
        # Expected: any 2xx, and the accepted status when it is not one (302 for redirect links).
        ok = sum(count for code, count in statuses.items() if 200 <= code < 300 or code == accepted_status)
        seconds = float(report.get("active_seconds") or 0) or int(report["wrk_duration_us"]) / 1e6
        latency = report["latency_us"]
        errors = report["errors"]
        result = {
            "rps": round(answered / seconds, 1) if seconds > 0 else 0.0,
            "p50_ms": round(latency["p50"] / 1000, 2),
            "p99_ms": round(latency["p99"] / 1000, 2),
            "requests": answered,
            "non_2xx": answered - ok,
            "rows_landed": rows_landed,
            "accepted": statuses.get(accepted_status, 0) if accepted_status is not None else None,
            "seconds": round(seconds, 3),
            "in_flight_at_stop": int(report["sent"]) - answered,
            "socket_errors": sum(int(errors[k]) for k in ("connect", "read", "write", "timeout")),
            "statuses": {str(code): statuses[code] for code in sorted(statuses)},
        }
    if commissions_landed is not None:
        result["commissions_landed"] = commissions_landed
    return result


# --- Judging the results ----------------------------------------------------------------------

# Every measurement that writes rows: (path in the document, what one accepted request makes).
ROW_GROUPS = (
    ("clicks.buffered", "click"),
    ("clicks.unbuffered", "click"),
    ("go", "click"),
    ("events", "event"),
    ("scale.events", "event"),
)


def _get(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def checks(results: dict[str, Any], *, events_attributed: bool = True) -> dict[str, bool]:
    """Every accepted click or redirect is one click row; every 201 event is one event and one commission.

    `*_drained` says every request sent got its answer before wrk stopped; when one did not, its row
    lands without a counted response and `*_rows_match` fails for that reason, not a server bug.
    """
    out: dict[str, bool] = {}
    for path, kind in ROW_GROUPS:
        group = _get(results, path) or {}
        name = path.replace(".", "_")
        for conc, m in group.items():
            if not (isinstance(m, dict) and "accepted" in m):
                continue
            out[f"{name}_{conc}_rows_match"] = m["accepted"] is not None and m["rows_landed"] == m["accepted"]
            if kind == "event" and events_attributed:
                out[f"{name}_{conc}_commissions_match"] = m.get("commissions_landed") == m["accepted"]
            out[f"{name}_{conc}_all_expected_status"] = m["non_2xx"] == 0 and m["requests"] > 0
            out[f"{name}_{conc}_drained"] = m["in_flight_at_stop"] == 0
    replay = _get(results, "events.replay")
    if replay:
        out["events_replay_exactly_once"] = bool(replay.get("exactly_once"))
    pages = _get(results, "pages.pages") or {}
    for name, page in pages.items():
        out[f"pages_{name}_ok"] = page.get("status") == 200
    csv_result = results.get("csv")
    if csv_result:
        out["csv_all_rows"] = csv_result.get("status") == 200 and csv_result.get("rows") == csv_result.get(
            "expected_rows"
        )
    delivery = _get(results, "webhooks.delivery")
    if delivery:
        out["webhooks_delivered_exactly_once"] = bool(delivery.get("exactly_once"))
        out["webhooks_signatures_verified"] = _get(results, "webhooks.bad_signatures") == 0
        out["webhooks_no_duplicates"] = _get(results, "webhooks.duplicates_over_the_section") == 0
    retention = _get(results, "scale.retention")
    if retention:
        out["scale_retention_dropped_the_month"] = retention.get("month") in retention.get(
            "dropped_partitions", []
        )
    payouts = results.get("payouts")
    if payouts:
        out["payouts_all_paid"] = payouts.get("paid") == payouts.get("eligible_affiliates")
    tracker = results.get("tracker") or {}
    for name, m in tracker.items():
        if isinstance(m, dict) and "accepted" in m:
            # Every answer of the status asked for: a 200 where a 304 was due is wrong here.
            expected = m["non_2xx"] == 0 if m["accepted"] is None else m["accepted"] == m["requests"]
            out[f"tracker_{name}_all_expected_status"] = expected and m["requests"] > 0
    return out


# (name, path of the figure, comparison, threshold, unit); see the issue's targets.
TARGETS = (
    ("clicks_c64_rps", "clicks.buffered.c64.rps", ">=", 6000, "req/s"),
    ("clicks_c64_p99", "clicks.buffered.c64.p99_ms", "<", 50, "ms"),
    ("tracker_c64_rps", "tracker.c64.rps", ">=", 30000, "req/s"),
    # Server CPU per GET /t.js against the bare 204 of /livez measured beside it.
    ("tracker_c64_server_cpu_vs_static", "tracker.c64_server_cpu_vs_static", "<=", 2, "x"),
    ("events_c16_rps", "events.c16.rps", ">=", 1500, "req/s"),
    ("events_c16_p99", "events.c16.p99_ms", "<", 40, "ms"),
    # The events rate with an endpoint subscribed to commission.created against none, alternated.
    ("webhooks_events_cost", "webhooks.events_cost_pct", "<", 10, "%"),
    ("panel_dashboard_30d_p95", "pages.pages.panel_dashboard_30d.p95_ms", "<", 150, "ms"),
    ("scale_retention_drop_seconds", "scale.retention.seconds", "<", 10, "s"),
    ("scale_events_rate_vs_1m", "scale.events_rate_vs_1m", ">=", 0.9, "x"),
    ("panel_dashboard_365d_p95", "pages.pages.panel_dashboard_365d.p95_ms", "<", 150, "ms"),
    ("portal_dashboard_p95", "pages.pages.portal_dashboard.p95_ms", "<", 80, "ms"),
    ("affiliates_by_earnings_p95", "pages.pages.affiliates_by_earnings.p95_ms", "<", 200, "ms"),
    ("csv_web_peak_rss", "csv.web_peak_rss_mb", "<", 200, "MB"),
    ("payout_run_20k_seconds", "payouts.total_seconds", "<", 300, "s"),
    ("payout_worker_peak_rss", "payouts.peak_rss_mb", "<", 300, "MB"),
)


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of the issue with the measured value and met / not met (None: not measured)."""
    out = {}
    for name, path, op, threshold, unit in TARGETS:
        value = _get(results, path)
        met = None
        if isinstance(value, (int, float)):
            met = {">=": value >= threshold, "<=": value <= threshold, "<": value < threshold}[op]
        out[name] = {"target": f"{op} {threshold} {unit}", "value": value, "met": met}
    # Redirect links at least at the click beacon's rate, both measured in the same run.
    go, clicks = _get(results, "go.c64.rps"), _get(results, "clicks.buffered.c64.rps")
    out["go_c64_rps_vs_clicks"] = {
        "target": ">= clicks.buffered.c64.rps",
        "value": go,
        "clicks": clicks,
        "met": go >= clicks if isinstance(go, (int, float)) and isinstance(clicks, (int, float)) else None,
    }
    # A payout run is only comparable with the target at the issue's size.
    if results.get("payouts") and results["payouts"].get("eligible_affiliates") != 20_000:
        for name in ("payout_run_20k_seconds",):
            out[name]["note"] = f"measured with {results['payouts'].get('eligible_affiliates')} affiliates"
    return out


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (p50 of 30 values is the 15th smallest, p95 the 29th)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return round(ordered[rank - 1], 2)


def build_document(
    *,
    date: str,
    commit: str,
    dirty: bool,
    machine: dict[str, Any],
    server: dict[str, Any],
    seed: dict[str, Any] | None,
    settings: dict[str, Any],
    results: dict[str, Any],
    events_attributed: bool = True,
) -> dict[str, Any]:
    """The output JSON: a flat, stable shape (see bench/README.md)."""
    public_seed = (
        {k: v for k, v in seed.items() if k not in {"secret", "tables", "codes_file"}} if seed else None
    )
    doc = {
        "date": date,
        "commit": commit,
        "dirty": dirty,
        "machine": machine,
        "server": server,
        "seed": public_seed,
        "settings": settings,
    }
    for section in SECTIONS:
        if section in results:
            doc[section] = results[section]
    doc["targets"] = targets(results)
    doc["checks"] = checks(results, events_attributed=events_attributed)
    return doc


# --- Machine, tools ----------------------------------------------------------------------------


def git_commit() -> tuple[str, bool]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    return commit or "unknown", bool(status)


def cpu_busy_fraction(sample_s: float = 1.0) -> float | None:
    """Share of all CPUs busy over a short sample (from /proc/stat), or None off Linux."""

    def read() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return idle, sum(fields)

    try:
        idle1, total1 = read()
        time.sleep(sample_s)
        idle2, total2 = read()
    except (OSError, ValueError, IndexError):
        return None
    total = total2 - total1
    return round(1 - (idle2 - idle1) / total, 2) if total > 0 else None


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk is not installed; installing it with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            ["apt-get", "install", "-y", "wrk"],
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "wrk"],
        ):
            subprocess.run(cmd, env=env, timeout=600, stdout=sys.stderr, check=False)
            path = shutil.which("wrk")
            if path:
                return path
    raise BenchError(
        "the load driver wrk is not installed: run `sudo apt-get install -y wrk` (Debian/Ubuntu) and retry"
    )


def wrk_version(wrk: str) -> str:
    try:
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0].strip() if first else "unknown"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Database ------------------------------------------------------------------------------------


def recreate_database(pg_url: str, db_name: str) -> str:
    """Drop and create the bench database; return the server's version."""
    import psycopg
    from psycopg import sql

    if not DB_NAME_RE.match(db_name):
        raise BenchError(
            f"refusing to drop {db_name!r}: the bench database's name must start with refapp_bench"
        )
    try:
        conn = psycopg.connect(f"{pg_url}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        raise BenchError(f"cannot reach PostgreSQL at {pg_url}: {exc}".strip()) from exc
    with conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        name = sql.Identifier(db_name)
        try:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        except psycopg.errors.SyntaxError:  # PostgreSQL before 13
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    return version


class RowCounter:
    """Counts the program's rows in the bench database, outside the server, in autocommit."""

    def __init__(self, database_url: str, program_id: int, tables: dict[str, str]):
        import psycopg
        from psycopg import sql

        self.conn = psycopg.connect(database_url, autocommit=True, connect_timeout=5)
        self.program_id = program_id
        self.query = sql.SQL(
            "SELECT (SELECT count(*) FROM {c} WHERE program_id = %(p)s),"
            " (SELECT count(*) FROM {e} WHERE program_id = %(p)s),"
            " (SELECT count(*) FROM {m} WHERE program_id = %(p)s)"
        ).format(
            c=sql.Identifier(tables["click"]),
            e=sql.Identifier(tables["event"]),
            m=sql.Identifier(tables["commission"]),
        )

    def counts(self) -> dict[str, int]:
        click, event, commission = self.conn.execute(self.query, {"p": self.program_id}).fetchone()
        return {"click": click, "event": event, "commission": commission}

    def settle(
        self, before: dict[str, int], expect: dict[str, int] | None = None, *, quiet_s: float = 2.0
    ) -> dict[str, int]:
        """Counts once the server has finished what it was sent.

        `expect` is how many new rows of each kind the requests sent should make (one per click or
        event request, one commission per attributed event). Wait until they are all there, or until
        the counts have not moved for `quiet_s` (some never will: a rejected request, a lost row),
        at most SETTLE_TIMEOUT_S.
        """
        expect = expect or {}
        current = self.counts()
        changed_at = time.monotonic()
        deadline = changed_at + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            if all(current[k] - before[k] >= n for k, n in expect.items()) and (
                expect or time.monotonic() - changed_at >= 0.3
            ):
                return current
            if time.monotonic() - changed_at >= quiet_s:
                return current
            time.sleep(0.1)
            latest = self.counts()
            if latest != current:
                current, changed_at = latest, time.monotonic()
        log("row counts were still moving after the settle timeout")
        return current

    def analyze(self, *, vacuum: bool = True) -> None:
        self.conn.execute("VACUUM ANALYZE" if vacuum else "ANALYZE")

    def checkpoint(self) -> float | None:
        """Write out what the seed and earlier figures left dirty, so that the next figure does not
        share the disks and cores with PostgreSQL's background write-back of them. Seconds taken,
        or None where the role may not checkpoint (superuser or pg_checkpoint needed)."""
        import psycopg

        started = time.monotonic()
        try:
            self.conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            return None
        return round(time.monotonic() - started, 2)

    def close(self) -> None:
        self.conn.close()


# --- Server ----------------------------------------------------------------------------------


def base_env(*, database_url: str, redis_url: str, port: int, buffer: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "refapp.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "bench",
            "DEBUG": "0",
            "BASE_URL": f"http://127.0.0.1:{port}",
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "RATE_LIMIT_CLICKS_PER_MINUTE": "100000000",
            "RATE_LIMIT_API_PER_MINUTE": "100000000",
            "RATE_LIMIT_GO_PER_MINUTE": "100000000",
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "REFAPP_CLICK_BUFFER": "1" if buffer else "0",
            "REFAPP_WEBHOOKS_ALLOW_PRIVATE": "1",  # the webhooks section's receiver is on loopback
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


_LOG_ERROR_RE = re.compile(r"Traceback|\bERROR\b|\[CRITICAL\]|WORKER TIMEOUT|Internal Server Error")


def _proc_stats():
    """(pid, command name, the fields after it) of every process in /proc/<pid>/stat."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        yield int(entry.name), stat[stat.find("(") + 1 : stat.rfind(")")], stat.rsplit(")", 1)[-1].split()


def process_group_pids(pgid: int) -> list[int]:
    """Processes of a process group (from /proc), the leader first."""
    pids = [pid for pid, _comm, fields in _proc_stats() if len(fields) > 2 and int(fields[2]) == pgid]
    return sorted(pids, key=lambda pid: (pid != pgid, pid))


def cpu_seconds(groups: dict[str, set[int]]) -> dict[str, float]:
    """CPU seconds so far (user and system, every thread) of each named set of pids, and of every
    PostgreSQL and Redis server process on the machine (`postgres`, `redis`)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = dict.fromkeys((*groups, "postgres", "redis"), 0.0)
    for pid, comm, fields in _proc_stats():
        name = next((group for group, pids in groups.items() if pid in pids), None)
        if name is None:
            name = "postgres" if comm.startswith("postgres") else "redis" if comm == "redis-server" else None
        if name is not None:
            out[name] += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return out


def webhook_worker_pids() -> list[int]:
    """The Celery worker this script started (start_worker: its own session) and its pool."""
    me = os.getpid()
    for pid, _comm, fields in _proc_stats():
        if int(fields[1]) != me:  # the parent pid
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"celery" in cmdline and b"worker" in cmdline:
            return process_group_pids(pid)
    return []


def cpu_per_request(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
    """Microseconds of CPU per answered request, by process group."""
    if requests <= 0:
        return {}
    return {name: round((after[name] - before[name]) / requests * 1e6, 1) for name in after}


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak resident set since the process started) of a process, in MB."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return out


class Server:
    """granian (default) or gunicorn serving refapp.wsgi on a free loopback port, in its own process group."""

    def __init__(
        self,
        *,
        kind: str = "granian",
        workers: int,
        threads: int,
        env: dict[str, str],
        port: int,
        log_path: Path,
        worker_class: str = "sync",
        backpressure: int = 64,
    ):
        self.kind = kind
        self.worker_class = worker_class
        self.workers = workers
        self.threads = threads
        self.backpressure = backpressure
        self.env = env
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        if self.kind == "granian":
            return [
                "--interface", "wsgi", "refapp.wsgi:application",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(self.workers),
                "--blocking-threads", str(self.threads),
                "--backpressure", str(self.backpressure),
            ]  # fmt: skip
        return [
            "refapp.wsgi",
            "-w", str(self.workers),
            "-k", self.worker_class,
            "--threads", str(self.threads),
            "--bind", f"127.0.0.1:{self.port}",
            "--log-level", "warning",
        ]  # fmt: skip

    def command(self) -> list[str]:
        if self.kind == "granian":
            return [str(Path(sys.executable).parent / "granian"), *self.args()]
        return [sys.executable, "-m", "gunicorn", *self.args()]

    def describe(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "workers": self.workers,
            "threads": self.threads,
            "click_buffer": self.env.get("REFAPP_CLICK_BUFFER") == "1",
            "cmd": f"{self.kind} " + " ".join(self.args()).replace(str(self.port), "PORT"),
        }
        if self.kind == "gunicorn":
            out["worker_class"] = self.worker_class
        return out

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole, spared our Ctrl-C
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BenchError(f"{self.kind} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with OPENER.open(f"{self.url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read(500).decode(errors='replace')}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise BenchError(f"server not ready after {READY_TIMEOUT_S}s (/healthz: {last}):\n{self.log_tail()}")

    def memory(self) -> dict[str, dict[str, float]]:
        """VmRSS/VmHWM of every process of the server (its workers included), by pid."""
        if self.proc is None:
            return {}
        return {str(pid): memory_mb(pid) for pid in process_group_pids(self.proc.pid)}

    def stop(self) -> None:
        stop_group(self.proc)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_errors(self) -> list[str]:
        return log_errors(self.log_path)


def log_errors(path: Path) -> list[str]:
    """Lines of a server's or worker's log that report an error."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if _LOG_ERROR_RE.search(line)]


def stop_group(proc: subprocess.Popen | None) -> None:
    """Stop a process this script started in its own session, and its children: SIGINT, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGINT, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)  # the group this script started (start_new_session)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


class Drainer:
    """`manage.py drain_clicks --follow` beside the server: moves buffered clicks into PostgreSQL."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "drain_clicks", "--follow"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        time.sleep(0.5)
        if self.proc.poll() is not None:
            raise BenchError(f"drain_clicks exited with {self.proc.returncode}: see {self.log_path}")

    def stop(self) -> None:
        stop_group(self.proc)


class ClickBuffer:
    """Reads (and, before a run, clears) the Redis click buffer of the bench's Redis database."""

    # The keys of tracking/buffer.py (the smoke test checks they agree).
    LIST_KEY = "refapp:clicks:buffer"
    KEYS = ("refapp:clicks:buffer", "refapp:clicks:seq", "refapp:clicks:epoch")

    def __init__(self, redis_url: str):
        import redis

        self.redis = redis.Redis.from_url(redis_url, socket_timeout=5)

    def reset(self) -> None:
        """A fresh bench database must not receive clicks buffered by an earlier, aborted run."""
        self.redis.delete(*self.KEYS)

    def pending(self) -> int:
        return int(self.redis.llen(self.LIST_KEY))


# --- Measuring ----------------------------------------------------------------------------------


def section_load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


class Bench:
    def __init__(
        self,
        args: argparse.Namespace,
        *,
        wrk: str,
        seed: dict[str, Any],
        counter: RowCounter | None,
        nonce: str,
        buffer: ClickBuffer | None = None,
    ):
        self.args = args
        self.wrk = wrk
        self.seed = seed
        self.counter = counter
        self.nonce = nonce
        self.buffer = buffer
        self.drainer: Drainer | None = None  # set while the click buffer's drainer runs
        self.tracker: dict[str, Any] = {}  # the tracker's versioned path and ETag (probe_tracker)

    def run_wrk(self, server: Server, kind: str, conc: int, window: int, grace: int, tag: str):
        if not TAG_RE.match(tag):
            raise ValueError(f"bad tag {tag!r}")
        threads = max(1, min(conc, self.args.wrk_threads))
        path = "/livez" if kind == "static" else "/"
        cmd = [
            self.wrk,
            f"-t{threads}",
            f"-c{conc}",
            f"-d{window + grace}s",
            "--timeout", WRK_TIMEOUT,
            "--latency",
            "-s", str(LUA_SCRIPT),
            server.url + path,
            "--", kind, tag, str(window), self.seed["program"],
            self.seed["codes_file"], self.seed["visitors_file"] if self.seed["clicks"] else "-",
            str(conc // threads),  # what wrk gives each thread
        ]  # fmt: skip
        fd, drain_name = tempfile.mkstemp(prefix="refapp-bench-drain-")
        os.close(fd)
        drain_file = Path(drain_name)
        env = {
            **os.environ,
            "REFAPP_BENCH_SECRET": self.seed["secret"],
            "REFAPP_BENCH_DRAIN_FILE": drain_name,
            "REFAPP_BENCH_TRACKER_PATH": self.tracker.get("path", "/t.js"),
            "REFAPP_BENCH_TRACKER_ETAG": self.tracker.get("etag", ""),
        }
        deadline = time.monotonic() + window + grace + 60
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            interrupted = False
            while True:
                try:
                    stdout, stderr = proc.communicate(timeout=0.1)
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() > deadline:
                        raise BenchError(f"wrk did not finish: {' '.join(cmd[:-7])}") from None
                    # Every thread has drained: end wrk now (it reports as usual) rather than idle to -d.
                    if not interrupted and len(drain_file.read_text().split()) >= threads:
                        proc.send_signal(signal.SIGINT)
                        interrupted = True
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
            drain_file.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise BenchError(f"wrk failed with {proc.returncode}: {(stderr or stdout).strip()[-2000:]}")
        return parse_lua_report(stdout), stdout

    def wait_buffer_drained(
        self, before: dict[str, int], expect: dict[str, int]
    ) -> tuple[dict[str, int], float]:
        """Counts once the click buffer is empty and the rows are in; and the seconds that took."""
        assert self.counter is not None and self.buffer is not None
        started = time.monotonic()
        deadline = started + self.args.drain_timeout
        current = self.counter.counts()
        changed_at = started
        while time.monotonic() < deadline:
            pending = self.buffer.pending()
            if pending == 0 and all(current[k] - before[k] >= n for k, n in expect.items()):
                return current, round(time.monotonic() - started, 2)
            if pending == 0 and time.monotonic() - changed_at >= 3.0:
                break  # empty buffer, counts still: some rows will never come
            time.sleep(0.05)
            latest = self.counter.counts()
            if latest != current:
                current, changed_at = latest, time.monotonic()
        log("the click buffer did not drain to the expected count")
        return current, round(time.monotonic() - started, 2)

    def measure(
        self, server: Server, kind: str, conc: int, tag: str, *, buffered: bool = False
    ) -> dict[str, Any]:
        assert self.counter is not None
        load = section_load()
        before = self.counter.counts()
        groups = {"server": set(process_group_pids(server.proc.pid))} if server.proc else {}
        if self.drainer is not None and self.drainer.proc is not None:
            groups["drain"] = set(process_group_pids(self.drainer.proc.pid))
        cpu_before = cpu_seconds(groups)
        wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        report, text = self.run_wrk(server, kind, conc, self.args.duration, self.args.grace, tag)
        wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the only child waited for
        expect = self.expected_rows(kind, report)
        drain_seconds = None
        if buffered and kind in ("click", "go"):
            after, drain_seconds = self.wait_buffer_drained(before, expect)
        else:
            after = self.counter.settle(before, expect)
        cpu_after = cpu_seconds(groups)  # after the drain: moving buffered clicks is part of their cost
        cpu_before["wrk"] = wrk_before.ru_utime + wrk_before.ru_stime
        cpu_after["wrk"] = wrk_after.ru_utime + wrk_after.ru_stime
        delta = {k: after[k] - before[k] for k in after}
        if kind in ("click", "go"):
            result = summarize(
                report, text, accepted_status=202 if kind == "click" else 302, rows_landed=delta["click"]
            )
            if buffered:
                result["drain_seconds"] = drain_seconds
        elif kind == "event":
            result = summarize(
                report,
                text,
                accepted_status=201,
                rows_landed=delta["event"],
                commissions_landed=delta["commission"],
            )
        elif kind in TRACKER_STATUS:
            result = summarize(report, text, accepted_status=TRACKER_STATUS[kind], rows_landed=None)
        else:
            result = summarize(report, text, accepted_status=None, rows_landed=None)
        result["load_before"] = load
        result["cpu_us_per_request"] = cpu_per_request(cpu_before, cpu_after, result["requests"])
        log(
            f"  {kind:6} c{conc:<3} {result['rps']:>9.1f} req/s  p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms"
            f"  unexpected {result['non_2xx']}  rows {result['rows_landed']} / accepted {result['accepted']}"
            + (f"  drained in {drain_seconds}s" if drain_seconds is not None else "")
        )
        log(
            "    CPU µs per request: "
            + ", ".join(f"{k} {v}" for k, v in result["cpu_us_per_request"].items())
        )
        if result["in_flight_at_stop"]:
            log(
                f"  {result['in_flight_at_stop']} requests were still unanswered {self.args.grace}s after the"
                " window closed: their rows land without a counted response (raise --grace)"
            )
        return result

    def expected_rows(self, kind: str, report: dict[str, Any] | None) -> dict[str, int]:
        """New rows the requests wrk sent should make: one click or event each, one commission per event."""
        sent = int(report["sent"]) if report else 0
        if kind in ("click", "go"):
            return {"click": sent}
        if kind == "event":
            return {"event": sent, "commission": sent if self.seed["clicks"] else 0}
        return {}

    def warm(self, server: Server, kinds: tuple[str, ...], buffered: bool) -> None:
        """Unrecorded warm-up: workers open their database connections, fill their caches."""
        assert self.counter is not None
        for kind in kinds:
            before = self.counter.counts()
            report, _ = self.run_wrk(
                server, kind, 16, self.args.warmup, self.args.grace, f"{self.nonce}w{kind[0]}{int(buffered)}"
            )
            if buffered and kind in ("click", "go"):
                self.wait_buffer_drained(before, self.expected_rows(kind, report))
            else:
                self.counter.settle(before, self.expected_rows(kind, report))

    def replay(self, server: Server, tag: str) -> dict[str, Any]:
        """Duplicate order ids: resend accepted orders, and send new ones twice at the same moment.

        Exactly once means one event (and one commission) per order id whatever was sent, with
        201 for the first and 200 for every replay.
        """
        assert self.counter is not None
        program_id = self.seed["program_id"]
        rows = self.counter.conn.execute(
            "SELECT order_id, visitor_id FROM tracking_event WHERE program_id = %s AND order_id LIKE %s"
            " ORDER BY id LIMIT %s",
            (program_id, f"o-{tag}-%", self.args.replay_orders),
        ).fetchall()
        visitors = Path(self.seed["visitors_file"]).read_text().split()[: self.args.replay_orders] or [""]
        fresh = [
            (f"r-{self.nonce}-{i:05d}", visitors[i % len(visitors)]) for i in range(self.args.replay_orders)
        ]
        jobs = [(o, v) for o, v in rows] + [(o, v) for o, v in fresh for _ in (0, 1)]

        def post(job: tuple[str, str]) -> int:
            order_id, visitor = job
            body = json.dumps(
                {
                    "event": "sale",
                    "order_id": order_id,
                    "visitor_id": visitor,
                    "amount_cents": 9900,
                    "currency": "USD",
                }
            ).encode()
            request = urllib.request.Request(
                server.url + "/api/v1/events",
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {self.seed['secret']}",
                },
            )
            try:
                with OPENER.open(request, timeout=30) as resp:
                    return resp.status
            except urllib.error.HTTPError as exc:
                return exc.code
            except (urllib.error.URLError, OSError):
                return 0

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(post, jobs))
        seconds = round(time.monotonic() - started, 2)
        ids = [o for o, _ in rows] + [o for o, _ in fresh]
        counts = self.counter.conn.execute(
            "SELECT e.order_id, count(DISTINCT e.id), count(c.id) FROM tracking_event e"
            " LEFT JOIN commissions_commission c ON c.event_id = e.id AND c.kind = 'commission'"
            " WHERE e.program_id = %s AND e.order_id = ANY(%s) GROUP BY e.order_id",
            (program_id, ids),
        ).fetchall()
        per_order = {order: (events, commissions) for order, events, commissions in counts}
        by_status: dict[str, int] = {}
        for status in statuses:
            by_status[str(status)] = by_status.get(str(status), 0) + 1
        exactly_once = len(per_order) == len(ids) and all(e == 1 and c == 1 for e, c in per_order.values())
        result = {
            "replayed_accepted_orders": len(rows),
            "new_orders_sent_twice_at_once": len(fresh),
            "requests": len(jobs),
            "statuses": by_status,
            "orders_with_exactly_one_event_and_commission": sum(
                1 for e, c in per_order.values() if e == 1 and c == 1
            ),
            "orders": len(ids),
            "exactly_once": exactly_once,
            "seconds": seconds,
        }
        log(
            f"  replay: {len(jobs)} requests over {len(ids)} order ids, statuses {by_status}, exactly once {exactly_once}"
        )
        return result


def http_get(url: str, cookie: str = "", *, timeout: float = 120) -> tuple[int, int, float]:
    """(status, body bytes, seconds to the last byte) of one GET on a fresh loopback connection."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    started = time.perf_counter()
    try:
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        resp = conn.getresponse()
        size = 0
        while chunk := resp.read(65536):
            size += len(chunk)
        return resp.status, size, time.perf_counter() - started
    finally:
        conn.close()


# The tracker figures and the status each must answer: the script (a 200 in Brotli), its revalidation.
TRACKER_STATUS = {"tracker": 200, "tracker304": 304}
BROWSER_ACCEPT_ENCODING = "gzip, deflate, br, zstd"


def probe_tracker(base_url: str) -> dict[str, Any]:
    """The tracker's versioned path and the ETag a browser's cached copy of it holds, read from the
    server (the plain script's ETag is its content hash), and its size in each coding."""
    out: dict[str, Any] = {"bytes": {}}
    for coding in ("identity", "gzip", "br"):
        request = urllib.request.Request(f"{base_url}/t.js", headers={"Accept-Encoding": coding})
        with OPENER.open(request, timeout=30) as resp:
            out["bytes"][coding] = len(resp.read())
            if coding == "identity":
                out["path"] = f"/t.js?v={resp.headers['ETag'].strip(chr(34))}"
    request = urllib.request.Request(
        base_url + out["path"], headers={"Accept-Encoding": BROWSER_ACCEPT_ENCODING}
    )
    with OPENER.open(request, timeout=30) as resp:
        out["etag"] = resp.headers["ETag"]
        out["content_encoding"] = resp.headers.get("Content-Encoding")
        out["cache_control"] = resp.headers.get("Cache-Control")
    return out


def probe_page(url: str, cookie: str, *, requests: int, warmups: int) -> dict[str, Any]:
    """p50/p95 over `requests` sequential GETs after `warmups` unrecorded ones."""
    for _ in range(warmups):
        http_get(url, cookie)
    times, statuses, size = [], set(), 0
    for _ in range(requests):
        status, size, seconds = http_get(url, cookie)
        statuses.add(status)
        times.append(seconds * 1000)
    return {
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "max_ms": round(max(times), 2) if times else None,
        "requests": len(times),
        "status": statuses.pop() if len(statuses) == 1 else sorted(statuses),
        "bytes": size,
    }


def csv_export(url: str, cookie: str, *, timeout: float) -> dict[str, Any]:
    """Stream one CSV export: status, rows, bytes, time to the first byte and to the last."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    started = time.perf_counter()
    first = None
    size = lines = 0
    try:
        conn.request(
            "GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers={"Cookie": cookie}
        )
        resp = conn.getresponse()
        deadline = time.monotonic() + timeout
        while chunk := resp.read(1 << 16):
            if first is None:
                first = time.perf_counter() - started
            size += len(chunk)
            lines += chunk.count(b"\n")
            if time.monotonic() > deadline:
                raise BenchError(f"the CSV export took longer than {timeout}s")
        status = resp.status
    finally:
        conn.close()
    return {
        "status": status,
        "rows": max(0, lines - 1),  # the header line
        "bytes": size,
        "first_byte_s": round(first or 0.0, 3),
        "seconds": round(time.perf_counter() - started, 2),
    }


def pgbench_inserts(pg_url: str, db_name: str, *, clients: int, seconds: int, threads: int) -> dict[str, Any]:
    """A bare single-row INSERT loop in PostgreSQL at `clients` connections, with pgbench."""
    import psycopg

    pgbench = shutil.which("pgbench")
    if pgbench is None:
        return {"error": "pgbench is not installed (PostgreSQL's client package)"}
    with psycopg.connect(f"{pg_url}/{db_name}", autocommit=True, connect_timeout=5) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_t")
        conn.execute("CREATE TABLE bench_t (id bigserial PRIMARY KEY, v integer NOT NULL)")
    url = urllib.parse.urlsplit(pg_url)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write("INSERT INTO bench_t (v) VALUES (1);\n")
    cmd = [
        pgbench, "-n", "-c", str(clients), "-j", str(threads), "-T", str(seconds), "-f", script.name,
        "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres", db_name,
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    finally:
        os.unlink(script.name)
    text = proc.stdout
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text)
    latency = re.search(r"latency average = ([0-9.]+) ms", text)
    done = re.search(r"number of transactions actually processed: (\d+)", text)
    with psycopg.connect(f"{pg_url}/{db_name}", autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute("SELECT count(*) FROM bench_t").fetchone()[0]
        conn.execute("DROP TABLE bench_t")
    return {
        "cmd": "pgbench " + " ".join(cmd[1:9]) + " (INSERT INTO bench_t (v) VALUES (1))",
        "tps": float(tps.group(1)) if tps else None,
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "transactions": int(done.group(1)) if done else None,
        "rows": rows,
        "error": None if proc.returncode == 0 else (proc.stderr or text)[-500:],
    }


WEBHOOK_WATCH_S = 5.0  # webhooks/watch.py WATCH_SECONDS (the smoke test checks they agree)


def api_call(server: Server, secret: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """One JSON API request with the program's secret key; HTTPError for a 4xx/5xx."""
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {secret}"},
    )
    with OPENER.open(request, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def start_worker(env: dict[str, str], log_path: Path, concurrency: int) -> subprocess.Popen:
    """A Celery worker (prefork) in its own process group, logging to `log_path`."""
    with log_path.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "refapp", "worker", "--loglevel", "WARNING",
             "--concurrency", str(concurrency), "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


# --- Main -----------------------------------------------------------------------------------------

SECTIONS = ("clicks", "go", "tracker", "events", "webhooks", "pages", "csv", "payouts", "limits", "scale")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark refapp (issue 5) against granian + PostgreSQL + Redis on loopback.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--only",
        default=",".join(s for s in SECTIONS if s != "scale"),
        help="comma-separated sections to run (scale: see --scale)",
    )
    parser.add_argument("--quick", action="store_true", help="2 s per load figure, small seeds")
    parser.add_argument(
        "--duration", type=int, help="seconds measured per load figure (default 15; 2 with --quick)"
    )
    parser.add_argument(
        "--grace",
        type=int,
        help="at most this many seconds after each window for in-flight requests to finish (default 15)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="seconds of unrecorded warm-up per server")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between measurements")
    parser.add_argument("--drain-timeout", type=int, default=180, help="longest wait for the click buffer")
    parser.add_argument("--affiliates", type=int, default=1000, help="affiliates of the load program")
    parser.add_argument(
        "--clicks",
        type=int,
        help="clicks in the table before the events run (default 1,000,000; 100 with --quick)",
    )
    parser.add_argument(
        "--unbuffered-conc", default="64", help="concurrencies of the unbuffered clicks ('' for none)"
    )
    parser.add_argument("--replay-orders", type=int, default=200, help="order ids of the replay check (x2)")
    # webhooks
    parser.add_argument(
        "--webhook-commissions", type=int, help="commissions delivered (default 10,000; 50 with --quick)"
    )
    parser.add_argument(
        "--webhook-rate", type=float, default=200.0, help="events per second sent for them (0: at once)"
    )
    parser.add_argument(
        "--webhook-pairs",
        type=int,
        help="off/on pairs of the events rate comparison (default 3; 1 with --quick)",
    )
    parser.add_argument(
        "--webhook-worker-concurrency",
        type=int,
        default=2,
        help="the Celery worker's processes (Procfile: 2)",
    )
    parser.add_argument("--webhook-timeout", type=int, default=900, help="longest wait for deliveries (s)")
    # pages / csv: the scale database
    parser.add_argument(
        "--scale-db", default="refapp_bench_scale", help="kept across runs (reseeded on mismatch)"
    )
    parser.add_argument("--reseed", action="store_true", help="recreate and reseed the scale database")
    parser.add_argument(
        "--scale",
        nargs="?",
        type=int,
        const=100_000_000,
        metavar="CLICKS",
        help="the scale benchmark (issue 20): CLICKS clicks over 24 months (default 100,000,000); runs"
        " events (at --clicks) and pages, then events and a retention drop at scale",
    )
    parser.add_argument("--scale-rows", type=int, metavar="CLICKS", help="the same as --scale CLICKS")
    parser.add_argument("--scale-affiliates", type=int, default=20_000)
    parser.add_argument("--scale-clicks", type=int, default=10_000_000)
    parser.add_argument("--scale-events", type=int, default=300_000)
    parser.add_argument(
        "--csv-rows", type=int, default=1_000_000, help="commissions of the CSV export program"
    )
    parser.add_argument("--page-requests", type=int, default=30)
    parser.add_argument(
        "--page-warmups",
        type=int,
        default=10,
        help="unrecorded GETs per page first, enough to reach every server worker (default 10)",
    )
    parser.add_argument("--no-explain", action="store_true", help="skip EXPLAIN of each page's slowest query")
    # payouts
    parser.add_argument("--payout-affiliates", type=int, default=20_000)
    parser.add_argument("--payout-db", default="refapp_bench_payouts", help="recreated on every run")
    parser.add_argument(
        "--payout-worker-concurrency", type=int, default=2, help="the Celery worker's processes (Procfile: 2)"
    )
    # limits
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    # server
    parser.add_argument("--server", choices=("granian", "gunicorn"), default="granian")
    parser.add_argument(
        "--workers",
        type=int,
        help="server workers (default 3 for granian, as the Procfile, 2 × cores + 1 for gunicorn)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="granian --blocking-threads (default 2, as the Procfile); gunicorn --threads (1)",
    )
    parser.add_argument("--backpressure", type=int, default=64, help="granian --backpressure")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync", help="gunicorn only")
    parser.add_argument("--wrk-threads", type=int, help="wrk threads (default: the number of cores)")
    parser.add_argument(
        "--pg-url", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server, no database"
    )
    parser.add_argument("--db-name", default="refapp_bench", help="dropped and recreated on every run")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "var" / "bench")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    if args.scale_rows is not None:
        args.scale = args.scale_rows
    if args.scale is not None:
        if args.scale < 10_000:
            parser.error("--scale needs at least 10,000 clicks")
        args.scale_clicks = args.scale
        args.csv_rows = min(args.csv_rows, 1000)  # the export is not part of the scale figures
        args.sections = ["events", "pages", "scale"]
    elif "scale" in args.sections:
        parser.error("the scale section runs with --scale [CLICKS]")
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown or not args.sections:
        parser.error(
            f"--only takes sections among {', '.join(SECTIONS)} (got {', '.join(unknown) or 'none'})"
        )
    if args.duration is None:
        args.duration = 2 if args.quick else 15
    if args.grace is None:
        args.grace = 15
    if args.clicks is None:
        args.clicks = 100 if args.quick else 1_000_000
    if args.webhook_commissions is None:
        args.webhook_commissions = 50 if args.quick else 10_000
    if args.webhook_pairs is None:
        args.webhook_pairs = 1 if args.quick else 3
    if not (1 <= args.webhook_commissions <= 1_000_000 and 1 <= args.webhook_pairs <= 20):
        parser.error("--webhook-commissions must be 1..1,000,000 and --webhook-pairs 1..20")
    if args.workers is None:
        args.workers = 3 if args.server == "granian" else 2 * cores + 1
    if args.threads is None:
        args.threads = 2 if args.server == "granian" else (4 if args.worker_class == "gthread" else 1)
    if args.wrk_threads is None:
        args.wrk_threads = cores
    try:
        args.unbuffered = [int(c) for c in args.unbuffered_conc.split(",") if c.strip()]
    except ValueError:
        parser.error("--unbuffered-conc takes comma-separated numbers")
    if not (1 <= args.duration <= 600 and 1 <= args.grace <= 60 and 1 <= args.warmup <= 60):
        parser.error("--duration must be 1..600 s, --grace 1..60 s, --warmup 1..60 s")
    if args.affiliates < 1 or args.clicks < 0 or args.scale_affiliates < 1 or args.payout_affiliates < 1:
        parser.error("affiliate counts must be at least 1 and --clicks not negative")
    if not (1 <= args.page_requests <= 1000 and 0 <= args.page_warmups <= 100):
        parser.error("--page-requests must be 1..1000 and --page-warmups 0..100")
    for name in (args.db_name, args.scale_db, args.payout_db):
        if not DB_NAME_RE.match(name):
            parser.error("database names must start with refapp_bench (they are dropped)")
    if len({args.db_name, args.scale_db, args.payout_db}) != 3:
        parser.error("--db-name, --scale-db and --payout-db must differ")
    args.pg_url = args.pg_url.rstrip("/")
    return args


def run_step(cmd: list[str], *, env: dict[str, str], what: str, timeout: int) -> str:
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{what} took longer than {timeout}s") from exc
    if proc.returncode != 0:
        raise BenchError(
            f"{what} failed ({proc.returncode}):\n{(proc.stderr or proc.stdout).strip()[-3000:]}"
        )
    return proc.stdout


def last_json(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])


class Runner:
    """Runs the chosen sections, each with the servers and data it needs, and stops them all."""

    def __init__(self, args: argparse.Namespace, stamp: str, nonce: str):
        self.args = args
        self.stamp = stamp
        self.nonce = nonce
        self.servers: list[Server] = []
        self.server_info: dict[str, Any] = {}

    def server(
        self, name: str, database_url: str, *, buffer: bool = False, workers: int | None = None
    ) -> Server:
        port = free_port()
        server = Server(
            kind=self.args.server,
            workers=workers or self.args.workers,
            threads=self.args.threads,
            backpressure=self.args.backpressure,
            worker_class=self.args.worker_class,
            env=base_env(database_url=database_url, redis_url=self.args.redis_url, port=port, buffer=buffer),
            port=port,
            log_path=self.args.out_dir / f"{self.stamp}-server-{name}.log",
        )
        log(f"server {name}: {server.describe()['cmd']} on {server.url}")
        self.servers.append(server)
        server.start()
        return server

    def finish(self, name: str, server: Server) -> None:
        server.stop()
        errors = server.log_errors()
        for line in errors[:10]:
            log(f"  server log: {line}")
        self.server_info[name] = {
            **server.describe(),
            "log_error_lines": len(errors),
            "log": str(server.log_path),
        }

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()

    # --- the load database: clicks, go, events, limits ---------------------------------------------

    def load_sections(self, results: dict[str, Any], wrk: str) -> dict[str, Any]:
        args = self.args
        sections = set(args.sections)
        database_url = f"{args.pg_url}/{args.db_name}"
        log(f"recreating database {args.db_name}")
        recreate_database(args.pg_url, args.db_name)
        env = base_env(database_url=database_url, redis_url=args.redis_url, port=8000)
        run_step(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            env=env,
            what="migrate",
            timeout=600,
        )
        clicks = args.clicks if sections & {"events", "webhooks"} else min(args.clicks, 1000)
        log(f"seeding {args.affiliates} affiliates and {clicks} clicks (COPY)")
        seed_dir = args.out_dir / f"seed-{args.db_name}"
        seed = last_json(
            run_step(
                [sys.executable, str(SEED_SCRIPT), "--affiliates", str(args.affiliates), "--clicks", str(clicks),
                 "--out-dir", str(seed_dir)],
                env=env, what="seed", timeout=900,
            )
        )  # fmt: skip
        log(f"  seeded in {seed['seconds']}s")
        counter = RowCounter(database_url, seed["program_id"], seed["tables"])
        buffer = ClickBuffer(args.redis_url)
        buffer.reset()
        try:
            counter.analyze()
            bench = Bench(args, wrk=wrk, seed=seed, counter=counter, nonce=self.nonce, buffer=buffer)
            server = self.server("buffered", database_url, buffer=True)
            drainer = Drainer(server.env, args.out_dir / f"{self.stamp}-drain_clicks.log")
            try:
                drainer.start()
                bench.drainer = drainer
                warm = tuple(
                    k
                    for k, s in (
                        ("click", "clicks"),
                        ("go", "go"),
                        ("event", "events"),
                        ("event", "webhooks"),
                    )
                    if s in sections
                )
                warm = tuple(dict.fromkeys(warm))
                bench.warm(server, warm or ("click",), buffered=True)
                # The conversion tables were empty when the seed was analyzed. Autovacuum would
                # analyze them once they hold rows; where it is off (as on the benchmark machine),
                # plans and foreign-key checks keep assuming empty tables and slow down as they grow.
                counter.analyze(vacuum=False)
                log(f"  checkpoint: {counter.checkpoint()} s")
                if "clicks" in sections:
                    results["clicks"] = {"buffered": {}, "unbuffered": {}}
                    for conc in CONCURRENCIES:
                        results["clicks"]["buffered"][f"c{conc}"] = bench.measure(
                            server, "click", conc, f"{self.nonce}cb{conc}", buffered=True
                        )
                        time.sleep(args.pause)
                if "go" in sections:
                    results["go"] = {}
                    for conc in CONCURRENCIES:
                        results["go"][f"c{conc}"] = bench.measure(
                            server, "go", conc, f"{self.nonce}g{conc}", buffered=True
                        )
                        time.sleep(args.pause)
                if "tracker" in sections:
                    results["tracker"] = self.tracker_section(bench, server)
                if "events" in sections:
                    if "clicks" in sections or "go" in sections:
                        log(f"  checkpoint: {counter.checkpoint()} s")
                    results["events"] = {"clicks_in_table": counter.counts()["click"]}
                    for conc in CONCURRENCIES:
                        results["events"][f"c{conc}"] = bench.measure(
                            server, "event", conc, f"{self.nonce}e{conc}"
                        )
                        time.sleep(args.pause)
                    results["events"]["replay"] = bench.replay(server, f"{self.nonce}e16")
                if "webhooks" in sections:
                    log(f"  checkpoint: {counter.checkpoint()} s")
                    results["webhooks"] = self.webhooks_section(bench, server, counter)
                if "limits" in sections:
                    results["limits"] = {
                        "static_c64": bench.measure(server, "static", 64, f"{self.nonce}s64"),
                        "static_note": "GET /livez: the same server answering 204 from its WSGI layer, before Django",
                    }
            finally:
                drainer.stop()
                bench.drainer = None
                self.finish("buffered", server)
            if "clicks" in sections and args.unbuffered:
                server = self.server("unbuffered", database_url, buffer=False)
                try:
                    bench.warm(server, ("click",), buffered=False)
                    for conc in args.unbuffered:
                        results["clicks"]["unbuffered"][f"c{conc}"] = bench.measure(
                            server, "click", conc, f"{self.nonce}cu{conc}"
                        )
                        time.sleep(args.pause)
                finally:
                    self.finish("unbuffered", server)
            if "limits" in sections:
                log(f"pgbench: single-row INSERTs at 64 connections for {args.pgbench_seconds}s")
                results["limits"]["pg_insert_c64"] = pgbench_inserts(
                    args.pg_url,
                    args.db_name,
                    clients=64,
                    seconds=args.pgbench_seconds,
                    threads=args.wrk_threads,
                )
                results["limits"]["load_before"] = section_load()
                clicks_c64 = _get(results, "clicks.buffered.c64.rps")
                static = results["limits"]["static_c64"]["rps"]
                inserts = results["limits"]["pg_insert_c64"].get("tps")
                results["limits"]["clicks_c64_share_of_static"] = (
                    round(clicks_c64 / static, 3) if clicks_c64 and static else None
                )
                results["limits"]["clicks_c64_share_of_pg_inserts"] = (
                    round(clicks_c64 / inserts, 3) if clicks_c64 and inserts else None
                )
                # An event is two statements and one transaction of about six rows: its rate is
                # bounded by the database more than the server, and this machine's pgbench figure
                # moves by half between runs, so read the event rate against it.
                events_c16 = _get(results, "events.c16.rps")
                results["limits"]["events_c16_share_of_pg_inserts"] = (
                    round(events_c16 / inserts, 3) if events_c16 and inserts else None
                )
                log(
                    f"  pgbench {inserts} tps, latency avg {results['limits']['pg_insert_c64'].get('latency_avg_ms')} ms"
                )
        finally:
            counter.close()
        return seed

    # --- outgoing webhooks ----------------------------------------------------------------------------

    def webhooks_section(self, bench: Bench, server: Server, counter: RowCounter) -> dict[str, Any]:
        """The events rate with an endpoint subscribed to commission.created and without (alternated
        pairs with the worker stopped, then one pair with it delivering), then
        `--webhook-commissions` commissions delivered by a real Celery worker to a receiver on
        loopback: each exactly once, and how long after the change."""
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from bench.receiver import Receiver

        args = self.args
        secret = bench.seed["secret"]
        receiver = Receiver().start()
        worker_log = args.out_dir / f"{self.stamp}-webhook-worker.log"
        # No worker until the paused figures are taken: one started and stopped at once (nothing is
        # pending before this section's endpoint exists) was interrupted mid-import in short runs.
        worker: subprocess.Popen | None = None
        out: dict[str, Any] = {
            "worker_concurrency": args.webhook_worker_concurrency,
            "load_before": section_load(),
        }
        try:
            endpoint = api_call(
                server,
                secret,
                "POST",
                "/api/v1/webhook-endpoints",
                {"url": receiver.url, "events": ["commission.created"], "description": "bench receiver"},
            )
            receiver.secret = endpoint["secret"]
            active = True

            def set_active(on: bool) -> None:
                nonlocal active
                if on != active:
                    api_call(
                        server, secret, "PATCH", f"/api/v1/webhook-endpoints/{endpoint['id']}", {"active": on}
                    )
                    active = on
                    # Every web worker keeps its answer for WATCH_SECONDS (webhooks/watch.py).
                    time.sleep(WEBHOOK_WATCH_S + 0.5)

            def idle() -> float:
                """Seconds until no message is pending: the previous figure's deliveries are done."""
                started = time.monotonic()
                deadline = started + args.webhook_timeout
                while time.monotonic() < deadline:
                    pending = counter.conn.execute(
                        "SELECT count(*) FROM webhooks_webhookmessage WHERE status = 'pending'"
                    ).fetchone()[0]
                    if pending == 0:
                        break
                    time.sleep(0.2)
                else:
                    log("  webhook messages were still pending at the timeout")
                return round(time.monotonic() - started, 2)

            def pairs(count: int, tag: str) -> dict[str, list[dict[str, Any]]]:
                """Alternated so that neither side always runs first: off/on, on/off, off/on, …"""
                figures: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
                for pair in range(count):
                    for state in ("off", "on") if pair % 2 == 0 else ("on", "off"):
                        set_active(state == "on")
                        figures[state].append(
                            bench.measure(server, "event", 16, f"{self.nonce}w{tag}{state[1]}{pair}")
                        )
                        time.sleep(args.pause)
                return figures

            def summary(figures: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
                rps = {k: [m["rps"] for m in v] for k, v in figures.items()}
                cpu = {k: [m["cpu_us_per_request"].get("server") for m in v] for k, v in figures.items()}
                pg = {k: [m["cpu_us_per_request"].get("postgres") for m in v] for k, v in figures.items()}
                mean_off, mean_on = (sum(rps[k]) / len(rps[k]) for k in ("off", "on"))
                return {
                    "rps_off": rps["off"],
                    "rps_on": rps["on"],
                    "server_cpu_us_per_event_off": cpu["off"],
                    "server_cpu_us_per_event_on": cpu["on"],
                    "postgres_cpu_us_per_event_off": pg["off"],
                    "postgres_cpu_us_per_event_on": pg["on"],
                    "on_vs_off": round(mean_on / mean_off, 3) if mean_off else None,
                    "cost_pct": round((1 - mean_on / mean_off) * 100, 1) if mean_off else None,
                    "figures": figures,
                }

            # The cost to ingestion: what a conversion's request and its database pay for writing the
            # messages, with no worker running while the windows run, so that its deliveries do not
            # take the same two cores from the web processes. The messages wait (rows, and their
            # tasks in the broker) and a worker started afterwards delivers them (the backlog's
            # time is reported). Not started yet rather than paused: a prefork worker stopped with SIGSTOP
            # and continued replaced its pool processes and left the tasks they had taken unacknowledged.
            paused = pairs(args.webhook_pairs, "p")
            worker = start_worker(server.env, worker_log, args.webhook_worker_concurrency)
            backlog = counter.conn.execute(
                "SELECT count(*) FROM webhooks_webhookmessage WHERE status = 'pending'"
            ).fetchone()[0]
            out["events_c16"] = summary(paused)
            out["events_c16"]["backlog_messages"] = backlog
            out["events_c16"]["backlog_delivered_in_s"] = idle()
            out["events_on_vs_off"] = out["events_c16"]["on_vs_off"]
            out["events_cost_pct"] = out["events_c16"]["cost_pct"]
            # The same with the worker delivering during the windows: on this 2-core machine its
            # deliveries compete with the web processes for the cores (what one machine running
            # everything pays, not the cost to the request).
            running = pairs(1, "r")
            out["events_c16_worker_delivering"] = summary(running)
            out["events_c16_worker_delivering"]["delivered_after_in_s"] = idle()
            log(
                f"  webhooks: events c16 off {out['events_c16']['rps_off']} on {out['events_c16']['rps_on']} req/s,"
                f" cost {out['events_cost_pct']} % (worker paused);"
                f" {out['events_c16_worker_delivering']['cost_pct']} % with the worker delivering;"
                f" backlog of {backlog} delivered in {out['events_c16']['backlog_delivered_in_s']} s"
            )
            set_active(True)
            idle()
            out["delivery"] = self.webhook_delivery(bench, server, counter, receiver)
            out["duplicates_over_the_section"] = receiver.duplicates()
            out["bad_signatures"] = sum(1 for a in receiver.snapshot() if a.signed is False)
            statuses = counter.conn.execute(
                "SELECT status, count(*) FROM webhooks_webhookmessage GROUP BY status ORDER BY status"
            ).fetchall()
            out["messages_by_status"] = dict(statuses)
            set_active(False)
        finally:
            stop_group(worker)
            receiver.stop()
        out["worker_log_errors"] = log_errors(worker_log)[:10]
        return out

    def webhook_delivery(
        self, bench: Bench, server: Server, counter: RowCounter, receiver: Any
    ) -> dict[str, Any]:
        args = self.args
        n, rate = args.webhook_commissions, args.webhook_rate
        visitors = Path(bench.seed["visitors_file"]).read_text().split()
        prefix = f"wh-{self.nonce}-"
        log(f"  webhooks: {n:,} attributed events at {rate or 'full'} per second, delivered by the worker")
        # CPU of the worker (its main process and pool), the web server, PostgreSQL and Redis over
        # the whole send-and-deliver window, per delivery.
        groups = {"worker": set(webhook_worker_pids())}
        if server.proc:
            groups["server"] = set(process_group_pids(server.proc.pid))
        cpu_before = cpu_seconds(groups)
        started, started_wall = time.monotonic(), time.time()

        def post(i: int) -> int:
            if rate:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            body = {
                "event": "sale",
                "order_id": f"{prefix}{i:07d}",
                "visitor_id": visitors[i % len(visitors)],
                "amount_cents": 9900,
                "currency": "USD",
            }
            try:
                api_call(server, bench.seed["secret"], "POST", "/api/v1/events", body)
                return 201
            except urllib.error.HTTPError as exc:
                return exc.code
            except (urllib.error.URLError, OSError):
                return 0

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(post, range(n)))
        sent_seconds = round(time.monotonic() - started, 2)
        rows = counter.conn.execute(
            "SELECT c.public_id, extract(epoch FROM c.created_at)::float8 FROM commissions_commission c"
            " JOIN tracking_event e ON e.id = c.event_id"
            " WHERE e.program_id = %s AND e.order_id LIKE %s AND c.kind = 'commission'",
            (bench.seed["program_id"], prefix + "%"),
        ).fetchall()
        created = dict(rows)
        deadline = time.monotonic() + args.webhook_timeout
        while time.monotonic() < deadline:
            got = {a.object_id for a in receiver.snapshot() if a.type == "commission.created"}
            if set(created) <= got:
                break
            time.sleep(0.2)
        cpu_after = cpu_seconds(groups)
        time.sleep(3)  # a late second delivery of a message would still be counted
        arrivals = [a for a in receiver.snapshot() if a.object_id in created]
        first: dict[str, float] = {}
        ids_per_commission: dict[str, set[str]] = {}
        per_message: dict[str, int] = {}
        for a in arrivals:
            first[a.object_id] = min(first.get(a.object_id, a.at), a.at)
            ids_per_commission.setdefault(a.object_id, set()).add(a.webhook_id)
            per_message[a.webhook_id] = per_message.get(a.webhook_id, 0) + 1
        delays = [(first[c] - at) * 1000 for c, at in created.items() if c in first]
        missing = len(set(created) - set(first))
        duplicates = sum(k - 1 for k in per_message.values() if k > 1)
        two_messages = sum(1 for ids in ids_per_commission.values() if len(ids) > 1)
        last = max((a.at for a in arrivals), default=None)
        by_status: dict[str, int] = {}
        for status in statuses:
            by_status[str(status)] = by_status.get(str(status), 0) + 1
        result = {
            "events_sent": n,
            "events_statuses": by_status,
            "send_seconds": sent_seconds,
            "rate_asked": rate or None,
            "commissions": len(created),
            "delivered": len(first),
            "missing": missing,
            "duplicate_deliveries": duplicates,
            "commissions_with_two_messages": two_messages,
            "exactly_once": len(created) == n and missing == 0 and duplicates == 0 and two_messages == 0,
            "delay_p50_ms": percentile(delays, 50),
            "delay_p99_ms": percentile(delays, 99),
            "delay_max_ms": round(max(delays), 1) if delays else None,
            "bad_signatures": sum(1 for a in arrivals if a.signed is False),
            # From the first event sent to the last arrival: what the worker kept up with.
            "deliveries_per_s": round(len(arrivals) / (last - started_wall), 1) if last else None,
            # From the last event answered to the last arrival: the backlog the worker had left.
            "seconds_after_sent": round(last - started_wall - sent_seconds, 2) if last else None,
            # PostgreSQL left out: its backends come and go with connections (a closed one takes
            # its CPU with it), so the difference can even be negative.
            "cpu_us_per_delivery": {
                k: v
                for k, v in cpu_per_request(cpu_before, cpu_after, len(arrivals)).items()
                if k != "postgres"
            },
            "load_after": section_load(),
        }
        log(
            f"  webhooks: {result['delivered']:,}/{result['commissions']:,} delivered, duplicates {duplicates},"
            f" delay p50 {result['delay_p50_ms']} ms p99 {result['delay_p99_ms']} ms,"
            f" {result['deliveries_per_s']}/s, worker CPU {result['cpu_us_per_delivery'].get('worker')} µs each"
        )
        return result

    def tracker_section(self, bench: Bench, server: Server) -> dict[str, Any]:
        """GET /t.js as browsers ask for it, its 304, and the bare 204 of /livez beside them: the
        same server, one after the other, so the CPU per request compares within one run."""
        bench.tracker = probe_tracker(server.url)
        log(f"  tracker {bench.tracker['path']}: {bench.tracker['bytes']} bytes by coding")
        out: dict[str, Any] = {
            "path": bench.tracker["path"],
            "accept_encoding": BROWSER_ACCEPT_ENCODING,
            "content_encoding": bench.tracker["content_encoding"],
            "bytes": bench.tracker["bytes"],
        }
        out["static_c64"] = bench.measure(server, "static", 64, f"{self.nonce}ts64")
        time.sleep(self.args.pause)
        out["c64"] = bench.measure(server, "tracker", 64, f"{self.nonce}t64")
        time.sleep(self.args.pause)
        out["not_modified_c64"] = bench.measure(server, "tracker304", 64, f"{self.nonce}tn64")
        static_cpu = out["static_c64"]["cpu_us_per_request"].get("server")
        for name in ("c64", "not_modified_c64"):
            cpu = out[name]["cpu_us_per_request"].get("server")
            out[f"{name}_server_cpu_vs_static"] = round(cpu / static_cpu, 2) if cpu and static_cpu else None
        return out

    # --- the scale database: pages, csv ---------------------------------------------------------------

    def scale_db(self) -> dict[str, Any]:
        """Seed the scale database, or reuse it when it already holds exactly the requested counts."""
        import psycopg

        args = self.args
        wanted = {
            "affiliates": args.scale_affiliates,
            "clicks": args.scale_clicks,
            "events": args.scale_events,
            "csv_rows": args.csv_rows,
        }
        reuse = False
        if not args.reseed:
            try:
                with psycopg.connect(
                    f"{args.pg_url}/{args.scale_db}", autocommit=True, connect_timeout=5
                ) as conn:
                    row = conn.execute("SELECT value FROM bench_seed_meta WHERE key = 'seed'").fetchone()
                meta = row[0] if row else {}
                reuse = bool(meta.get("complete")) and all(meta.get(k) == v for k, v in wanted.items())
            except psycopg.Error:
                reuse = False
        database_url = f"{args.pg_url}/{args.scale_db}"
        env = base_env(database_url=database_url, redis_url=args.redis_url, port=8000)
        started = time.monotonic()
        if not reuse:
            log(f"recreating the scale database {args.scale_db}")
            recreate_database(args.pg_url, args.scale_db)
        run_step(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            env=env,
            what="migrate",
            timeout=1800,
        )
        log(
            f"seeding {args.scale_clicks:,} clicks, {args.scale_events:,} events, {args.scale_affiliates:,} affiliates"
            f" and a {args.csv_rows:,}-row export program"
            if not reuse
            else "reusing the scale database"
        )
        seed = last_json(
            run_step(
                [sys.executable, str(SCALE_SCRIPT), "seed", "--affiliates", str(args.scale_affiliates),
                 "--clicks", str(args.scale_clicks), "--events", str(args.scale_events),
                 "--csv-rows", str(args.csv_rows)],
                env=env, what="scale seed", timeout=3600,
            )
        )  # fmt: skip
        seed["wall_seconds_this_run"] = round(time.monotonic() - started, 1)
        seed["database"] = args.scale_db
        if not seed.get("reused"):
            log(f"  scale seed took {seed['seed_seconds']}s (steps {seed.get('steps')})")
        return seed

    def scale_sections(self, results: dict[str, Any]) -> None:
        args = self.args
        sections = set(args.sections)
        seed = self.scale_db()
        database_url = f"{args.pg_url}/{args.scale_db}"
        env = base_env(database_url=database_url, redis_url=args.redis_url, port=8000)
        sessions = last_json(
            run_step([sys.executable, str(SCALE_SCRIPT), "sessions"], env=env, what="sessions", timeout=300)
        )
        staff = f"{sessions['cookie']}={sessions['staff']}"
        portal = f"{sessions['cookie']}={sessions['portal']}"
        if "pages" in sections:
            today = datetime.now(UTC).date()
            start_365 = (today - timedelta(days=364)).isoformat()
            pages = {
                "panel_dashboard_30d": ("/panel/p/scale/?range=30", staff),
                "panel_dashboard_365d": (
                    f"/panel/p/scale/?range=custom&start={start_365}&end={today.isoformat()}",
                    staff,
                ),
                "affiliates_by_earnings": ("/panel/p/scale/affiliates/?sort=-earnings", staff),
                "portal_dashboard": ("/portal/", portal),
            }
            server = self.server("pages", database_url)
            out: dict[str, Any] = {
                "seed": seed,
                "top_affiliate": sessions["top_affiliate"],
                "load_before": section_load(),
                "pages": {},
            }
            try:
                for name, (path, cookie) in pages.items():
                    out["pages"][name] = {
                        "path": path,
                        **probe_page(
                            server.url + path, cookie, requests=args.page_requests, warmups=args.page_warmups
                        ),
                    }
                    m = out["pages"][name]
                    log(f"  {name:24} p50 {m['p50_ms']} ms  p95 {m['p95_ms']} ms  status {m['status']}")
            finally:
                self.finish("pages", server)
            if not args.no_explain:
                out["explain"] = {}
                for cookie_key, names in (
                    ("staff", [n for n in pages if pages[n][1] == staff]),
                    ("portal", ["portal_dashboard"]),
                ):
                    plans = last_json(
                        run_step(
                            [sys.executable, str(SCALE_SCRIPT), "explain", "--cookie", sessions["cookie"],
                             "--session", sessions[cookie_key], *[pages[n][0] for n in names]],
                            env=env, what="explain", timeout=900,
                        )
                    )  # fmt: skip
                    for n in names:
                        out["explain"][n] = plans.get(pages[n][0])
            results["pages"] = out
        if "csv" in sections:
            server = self.server("csv", database_url, workers=1)
            try:
                http_get(server.url + "/panel/p/csvexp/commissions/?page=1", staff)  # warm the worker up
                before = server.memory()
                log(f"CSV export of {args.csv_rows:,} commissions through one worker")
                result = csv_export(
                    server.url + "/panel/p/csvexp/commissions/export.csv", staff, timeout=1800
                )
                after = server.memory()
            finally:
                self.finish("csv", server)
            peak = max((m.get("VmHWM", 0.0) for m in after.values()), default=None)
            result.update(
                expected_rows=args.csv_rows,
                path="/panel/p/csvexp/commissions/export.csv",
                rows_per_s=round(result["rows"] / result["seconds"]) if result["seconds"] else None,
                web_peak_rss_mb=peak,
                memory_before_mb=before,
                memory_after_mb=after,
                note="one granian worker; VmHWM is each process's peak resident set since it started",
                load_before=section_load(),
            )
            log(f"  {result['rows']:,} rows in {result['seconds']}s, web peak RSS {peak} MB")
            results["csv"] = result

    # --- the scale benchmark: events and retention at scale (--scale) -------------------------------

    def scale_extra(self, results: dict[str, Any], wrk: str) -> None:
        """Events at 16 connections against the scale database's program (its clicks in the table),
        compared with the events figure at --clicks; then the daily retention job dropping a month."""
        args = self.args
        database_url = f"{args.pg_url}/{args.scale_db}"
        env = base_env(database_url=database_url, redis_url=args.redis_url, port=8000)
        seed = last_json(
            run_step(
                [
                    sys.executable,
                    str(SCALE_SCRIPT),
                    "load-seed",
                    "--out-dir",
                    str(args.out_dir / "seed-scale"),
                ],
                env=env,
                what="scale load seed",
                timeout=600,
            )
        )
        counter = RowCounter(database_url, seed["program_id"], seed["tables"])
        out: dict[str, Any] = {"clicks": args.scale, "load_before": section_load()}
        try:
            bench = Bench(args, wrk=wrk, seed=seed, counter=counter, nonce=self.nonce)
            server = self.server("scale-events", database_url)
            try:
                # First as seeded: the pages' 300,000 events and commissions in the tables. Their
                # size, not the clicks', is what this figure adds (bench/LOG.md, 2026-12-07).
                bench.warm(server, ("event",), buffered=False)
                log(f"  checkpoint: {counter.checkpoint()} s")
                with_history = bench.measure(server, "event", 16, f"{self.nonce}sh16")
                # Then from empty conversion tables, as the load database's figure started: the
                # same kind of event (a visitor's first conversion) against more clicks, nothing else.
                log("  emptying the scale database's conversion tables, as the load database's were")
                out["conversions_reset"] = last_json(
                    run_step(
                        [sys.executable, str(SCALE_SCRIPT), "conversions-reset"],
                        env=env,
                        what="conversions reset",
                        timeout=600,
                    )
                )
                bench.warm(server, ("event",), buffered=False)
                log(f"  checkpoint: {counter.checkpoint()} s")
                out["events"] = {
                    "c16": bench.measure(server, "event", 16, f"{self.nonce}se16"),
                    "c16_with_history": with_history,
                }
            finally:
                self.finish("scale-events", server)
        finally:
            counter.close()
        at_load = _get(results, "events.c16.rps")
        out["events_clicks_in_load_table"] = _get(results, "events.clicks_in_table")
        for key, figure in (
            ("events_rate_vs_1m", "c16"),
            ("events_rate_vs_1m_with_history", "c16_with_history"),
        ):
            at_scale = _get(out, f"events.{figure}.rps")
            out[key] = round(at_scale / at_load, 3) if at_scale and at_load else None
        log("  retention: the daily job with the oldest month past retention")
        out["retention"] = last_json(
            run_step(
                [sys.executable, str(SCALE_SCRIPT), "retention"], env=env, what="retention", timeout=3600
            )
        )
        log(
            f"  retention took {out['retention']['seconds']}s, dropped {out['retention']['dropped_partitions']}"
            f" ({out['retention']['rows_in_month']:,} clicks)"
        )
        pages = _get(results, "pages.pages") or {}
        out["pages_p95_ms"] = {name: page.get("p95_ms") for name, page in pages.items()}
        results["scale"] = out

    # --- payouts ----------------------------------------------------------------------------------------

    def payouts(self, results: dict[str, Any]) -> None:
        args = self.args
        database_url = f"{args.pg_url}/{args.payout_db}"
        log(f"recreating database {args.payout_db} with {args.payout_affiliates:,} payable affiliates")
        recreate_database(args.pg_url, args.payout_db)
        env = base_env(database_url=database_url, redis_url=args.redis_url, port=8000)
        run_step(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            env=env,
            what="migrate",
            timeout=600,
        )
        seed = last_json(
            run_step(
                [sys.executable, str(SCALE_SCRIPT), "payouts-seed", "--affiliates", str(args.payout_affiliates)],
                env=env, what="payouts seed", timeout=1800,
            )
        )  # fmt: skip
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from tests.fakestripe.server import FakeStripe

        fake = FakeStripe().start()
        try:
            fake.set_balance("usd", 10**12)
            for account in seed["accounts"]:
                fake.set_account(account, payouts_enabled=True)
            env.update(
                STRIPE_SECRET_KEY="sk_test_bench",
                STRIPE_API_BASE=fake.url,
                EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
            )
            log(
                f"payout run: payouts_create, sent by a Celery worker (prefork, concurrency"
                f" {args.payout_worker_concurrency}) against the fake Stripe"
            )
            # The run's own Redis database: tasks an aborted run left there must not be taken now.
            import redis

            redis.Redis.from_url(args.redis_url, socket_timeout=5).flushdb()
            worker_log = args.out_dir / f"{self.stamp}-payout-worker.log"
            with worker_log.open("wb") as sink:
                worker = subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "refapp", "worker", "--loglevel", "WARNING",
                     "--concurrency", str(args.payout_worker_concurrency), "--without-gossip", "--without-mingle"],
                    cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            try:
                load = section_load()
                started = time.monotonic()
                out = last_json(
                    run_step(
                        [sys.executable, str(SCALE_SCRIPT), "payouts-run"],
                        env=env,
                        what="payout run",
                        timeout=3600,
                    )
                )
                out["process_wall_seconds"] = round(time.monotonic() - started, 1)
                memory = {pid: memory_mb(pid) for pid in process_group_pids(worker.pid)}
            finally:
                stop_group(worker)
            out["transfers_at_fake_stripe"] = len(fake.transfers)
        finally:
            fake.stop()
        out.update(
            eligible_affiliates=args.payout_affiliates,
            commissions=seed["commissions"],
            seed_seconds=seed["seconds"],
            paid=out["payout_statuses"].get("paid", 0),
            worker_concurrency=args.payout_worker_concurrency,
            worker_memory_mb=memory,
            # The largest process of the worker (the parent or a pool child): what one worker needs.
            peak_rss_mb=max((m.get("VmHWM", 0.0) for m in memory.values()), default=None),
            worker_total_rss_mb=round(sum(m.get("VmRSS", 0.0) for m in memory.values()), 1),
            worker_log_errors=log_errors(worker_log),
            load_before=load,
            note="payouts_create in one process; every payout_send through Redis to a real Celery worker",
        )
        log(
            f"  created {out['payouts_created']} in {out['create_seconds']}s, sent in {out['send_seconds']}s,"
            f" worker peak RSS {out['peak_rss_mb']} MB"
        )
        results["payouts"] = out


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    sections = set(args.sections)
    load_needed = sections & {"clicks", "go", "tracker", "events", "webhooks", "limits"}
    wrk = ensure_wrk() if load_needed else ""
    cores = os.cpu_count() or 1
    now = datetime.now(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    nonce = secrets.token_hex(3)  # in every visitor and order id of this run
    commit, dirty = git_commit()
    busy_before = cpu_busy_fraction()
    load_before = section_load()
    if busy_before is not None and busy_before > 0.25:
        log(f"note: the CPUs were {busy_before:.0%} busy before the run; other work will depress the figures")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    runner = Runner(args, stamp, nonce)
    results: dict[str, Any] = {}
    seed = None
    pg_version = None
    try:
        import psycopg

        with psycopg.connect(f"{args.pg_url}/postgres", connect_timeout=5) as conn:
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:
        raise BenchError(f"cannot reach PostgreSQL at {args.pg_url}: {exc}") from exc
    try:
        if load_needed:
            seed = runner.load_sections(results, wrk)
        if sections & {"pages", "csv"}:
            runner.scale_sections(results)
        if "scale" in sections:
            runner.scale_extra(results, wrk)
        if "payouts" in sections:
            runner.payouts(results)
    finally:
        runner.stop_all()

    busy_after = cpu_busy_fraction()  # the servers are stopped: anything busy now is someone else
    if busy_after is not None and busy_after > 0.25:
        log(f"note: the CPUs were {busy_after:.0%} busy right after the run: other work was competing")
    machine = {
        "cores": cores,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "postgres": pg_version,
        "wrk": wrk_version(wrk) if wrk else None,
        "cpu_busy_before": busy_before,
        "cpu_busy_after": busy_after,
        "load_before": load_before,
        "load_after": section_load(),
    }
    settings = {
        "sections": args.sections,
        "duration_s": args.duration,
        "grace_s": args.grace,
        "warmup_s": args.warmup,
        "wrk_threads": args.wrk_threads,
        "page_requests": args.page_requests,
        "page_warmups": args.page_warmups,
        "total_s": round(time.monotonic() - started, 1),
        "output": str(args.out_dir / f"{stamp}.json"),
    }
    return build_document(
        date=now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        commit=commit,
        dirty=dirty,
        machine=machine,
        server=runner.server_info,
        seed=seed,
        settings=settings,
        results=results,
        events_attributed=bool(seed and seed["clicks"] > 0),
    )


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # so the servers are stopped on kill too
    try:
        doc = run(args)
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        return 130
    text = json.dumps(doc, indent=2, default=str)
    print(text, flush=True)
    output = Path(doc["settings"]["output"])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text + "\n")
    log(f"written to {output}")
    for name, target in doc["targets"].items():
        if target["met"] is not None:
            log(
                f"target {name}: {target['value']} ({target['target']}): {'met' if target['met'] else 'NOT met'}"
            )
    failed = [name for name, ok in doc["checks"].items() if not ok]
    if failed:
        log(f"checks failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
