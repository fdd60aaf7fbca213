"""Click recording: the hot path. One cached lookup, one INSERT, no sessions, no templates."""

from __future__ import annotations

import functools
import re
import secrets
from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlsplit

from django.db import transaction

from affiliates.models import Program
from refapp.hashing import ip_prefix_and_hash

from . import buffer
from .models import Click, DroppedClickDaily

VISITOR_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_BOT_RE = re.compile(
    r"bot|crawl|spider|slurp|bingpreview|facebookexternalhit|headless|phantom|python-requests|curl/|wget|"
    r"httpclient|java/|go-http|okhttp|axios|node-fetch|lighthouse|pingdom|uptime|monitor|preview",
    re.IGNORECASE,
)


def new_visitor_id() -> str:
    return secrets.token_urlsafe(16)


@functools.lru_cache(maxsize=4096)
def is_bot(user_agent: str) -> bool:
    """Remembered per user agent: a few thousand browsers send nearly every click, and the pattern
    search cost about 20 µs of each one's ~260."""
    return not user_agent or bool(_BOT_RE.search(user_agent))


def _first(query: dict[str, list[str]], *names: str) -> str:
    for name in names:
        values = query.get(name)
        if values and values[0]:
            return values[0][:200]
    return ""


def click_values(
    *,
    program: Program,
    affiliate_id: int,
    visitor_id: str,
    url: str,
    referrer: str,
    user_agent: str,
    ip: str,
    country: str,
    source: str,
    now: datetime,
    query: dict[str, list[str]] | None = None,
) -> dict:
    """The clicks-table row of one visit. `query`: the url's query as parse_qs() answers it, when
    the caller has it already (a /go/ link builds its url from it); parsed from `url` otherwise."""
    if query is None:
        try:
            query = parse_qs(urlsplit(url).query)
        except ValueError:
            query = {}
    ip_prefix, ip_hash = ip_prefix_and_hash(ip)
    return {
        "program_id": program.pk,
        "affiliate_id": affiliate_id,
        "visitor_id": visitor_id,
        "created_at": now,
        "landing_url": url[:2000],
        "referrer": referrer[:2000],
        "utm_source": _first(query, "utm_source"),
        "utm_medium": _first(query, "utm_medium"),
        "utm_campaign": _first(query, "utm_campaign", "campaign"),
        "utm_term": _first(query, "utm_term"),
        "utm_content": _first(query, "utm_content"),
        "sub_id": _first(query, "sub_id", "subid", "sub1"),
        "user_agent": user_agent[:500],
        "country": country[:2].upper(),
        "ip_prefix": ip_prefix,
        "ip_hash": ip_hash,
        "source": source,
    }


def click_record(*, limit: str = "", **kwargs) -> bool:
    """Store one click (keyword arguments of click_values): buffered in Redis or inserted directly.

    With `limit` (a rate-limit bucket) the sender's request is counted first and the click stored
    only under the limit; buffered, counting and storing are one Redis round trip. True if stored.
    A Redis outage never loses a click: it is inserted directly, and the rate limit fails open.
    """
    from refapp import ratelimit

    values = click_values(**kwargs)
    if buffer.enabled():  # lands in the clicks table with the next drain (tracking/buffer.py)
        try:
            if not limit:
                buffer.push(values)
                return True
            key, most, ttl = ratelimit.counter(limit, kwargs["ip"])
            return buffer.push(values, limit_key=key, limit=most, limit_ttl=ttl) is not None
        except buffer.Unavailable:
            pass  # Redis is down: insert it below (the rate limit fails open meanwhile)
    if limit and not ratelimit.hit(limit, kwargs["ip"]):
        return False
    # A plain INSERT in autocommit: nothing else to keep consistent with, so no transaction block.
    Click(**values).save(force_insert=True)
    return True


# Dropped clicks, buffered mode: one Redis hash of "program_id:day:reason" -> count, folded into
# DroppedClickDaily by dropped_clicks_fold() with every drain of the click buffer.
DROPPED_KEY = "refapp:clicks:dropped"
DROPPED_FOLDING_KEY = "refapp:clicks:dropped:folding"


def _dropped_upsert(rows: list[tuple[int, date, str, int]]) -> None:
    """Add counts to their (program, day, reason) rows: INSERT … ON CONFLICT, one statement per row,
    on PostgreSQL and SQLite alike (no read, no lock held across statements)."""
    from django.db import connection

    table = DroppedClickDaily._meta.db_table
    sql = (
        f"INSERT INTO {table} (program_id, day, reason, count) VALUES (%s, %s, %s, %s) "
        f"ON CONFLICT (program_id, day, reason) DO UPDATE SET count = {table}.count + excluded.count"
    )
    with connection.cursor() as cursor:
        for program_id, day, reason, n in rows:
            cursor.execute(sql, [program_id, connection.ops.adapt_datefield_value(day), reason, n])


def dropped_click_count(*, program_id: int, reason: str, now: datetime) -> None:
    """Count one click the click endpoint refused (a bot, the rate limit, a disallowed origin).

    On the refused path only, so an accepted click pays nothing: with the click buffer on, one
    HINCRBY on Redis (folded in later by dropped_clicks_fold); otherwise, or when Redis cannot be
    reached, one upsert in autocommit. A counter, not an audit: a count lost to a crash is acceptable.
    """
    from refapp import ratelimit

    day = now.astimezone(UTC).date()
    if buffer.enabled() and not ratelimit.redis_down():
        try:
            ratelimit._redis().hincrby(DROPPED_KEY, f"{program_id}:{day.isoformat()}:{reason}", 1)
            return
        except ratelimit.UNREACHABLE as exc:
            ratelimit.redis_failed(exc)  # then count it in the database below
    _dropped_upsert([(program_id, day, reason, 1)])


def dropped_clicks_fold() -> int:
    """Move the buffered dropped-click counts from Redis into DroppedClickDaily. Returns how many
    counts were folded. The hash is renamed first, so counts made meanwhile wait for the next fold;
    a fold that died after its commit but before deleting the renamed hash counts it again next time
    (at most one second of dropped clicks counted twice: acceptable for a counter)."""
    import redis

    if not buffer.enabled():
        return 0
    conn = buffer.client()
    if not conn.exists(DROPPED_FOLDING_KEY):
        try:
            conn.rename(DROPPED_KEY, DROPPED_FOLDING_KEY)
        except redis.ResponseError:  # no such key: nothing was dropped since the last fold
            return 0
    rows = []
    for field, n in conn.hgetall(DROPPED_FOLDING_KEY).items():
        program_id, day, reason = field.decode().split(":")
        rows.append((int(program_id), date.fromisoformat(day), reason, int(n)))
    live = set(Program.objects.filter(pk__in={row[0] for row in rows}).values_list("pk", flat=True))
    with transaction.atomic():
        _dropped_upsert([row for row in rows if row[0] in live])  # a deleted program's counts go
    conn.delete(DROPPED_FOLDING_KEY)
    return sum(row[3] for row in rows)


# The JSON click_ingest reads and answers (POST /api/v1/track/click).
CLICK_REQUEST_SCHEMA: dict = {
    "type": "object",
    "required": ["program", "ref"],
    "properties": {
        "program": {"type": "string", "maxLength": 50},
        "ref": {"type": "string", "maxLength": 64},
        "visitor_id": {"type": "string", "pattern": VISITOR_RE.pattern},
        "url": {"type": "string", "maxLength": 2000},
        "referrer": {"type": "string", "maxLength": 2000},
        "recorded": {
            "type": "boolean",
            "description": "True when the /go/ redirect already recorded this visit: nothing is "
            "stored, the answer only tells the visitor's friend reward.",
        },
    },
}
CLICK_RESPONSE_SCHEMA: dict = {
    "type": "object",
    "required": ["visitor_id", "attributed"],
    "additionalProperties": False,
    "properties": {
        "visitor_id": {"type": "string"},
        "attributed": {"type": "boolean"},
        "coupon": {
            "type": "object",
            "description": "The friend reward of the referring affiliate, when the program offers one.",
            "required": ["code", "label"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "examples": ["JO20"]},
                "label": {"type": "string", "examples": ["Referred by Jo: 20 % off your first 3 months"]},
            },
        },
    },
}


def click_ingest(
    *, data: dict, origin: str, ip: str, user_agent: str, country: str, now: datetime
) -> tuple[int, dict]:
    """Validate a tracker click and record it. Returns (HTTP status, JSON body) or raises ApiError.

    Shared by the Django view and the WSGI fast path (refapp.fastpath), so both answer alike.
    """
    from refapp import ratelimit
    from refapp.api import ApiError, Fields

    from . import lookup

    def limited() -> ApiError:
        return ApiError(429, "rate_limited", "Too many clicks from this address; slow down.")

    def count_or_refuse(program: Program | None = None) -> None:
        if not ratelimit.hit("click", ip):
            if program is not None:
                dropped_click_count(
                    program_id=program.pk, reason=DroppedClickDaily.Reason.RATE_LIMIT, now=now
                )
            raise limited()

    fields = Fields(data)
    slug = fields.str("program", required=True, max_length=50)
    code = fields.str("ref", required=True, max_length=64)
    visitor_id = fields.str("visitor_id", max_length=64)
    url = fields.str("url", max_length=2000, default="") or ""
    referrer = fields.str("referrer", max_length=2000, default="") or ""
    recorded = data.get("recorded", False)
    if not isinstance(recorded, bool):
        fields.add("recorded", "Must be true or false.")
    if visitor_id and not VISITOR_RE.match(visitor_id):
        fields.add("visitor_id", "Use 8 to 64 letters, digits, '-' or '_'.")
    # Every request counts against the sender's limit, valid or not. A click that will be stored
    # is counted by the buffer's script in the same round trip that stores it.
    if fields.errors:
        count_or_refuse()
    fields.raise_if_any()

    program = lookup.program_by_slug(slug or "")
    if program is None:
        count_or_refuse()
        raise ApiError(404, "unknown_program", f"No program {slug!r}.")
    if origin and not program.origin_allowed(origin):
        count_or_refuse(program)
        dropped_click_count(program_id=program.pk, reason=DroppedClickDaily.Reason.ORIGIN, now=now)
        raise ApiError(403, "origin_not_allowed", "This origin may not report clicks for this program.")
    visitor_id = visitor_id or new_visitor_id()
    affiliate = lookup.active_affiliate_by_code(program, code or "")
    if affiliate is None or is_bot(user_agent):
        count_or_refuse(program)
        if affiliate is not None:  # an unknown code is no click at all; a bot's click is dropped
            dropped_click_count(program_id=program.pk, reason=DroppedClickDaily.Reason.BOT, now=now)
        return 202, {"visitor_id": visitor_id, "attributed": False}
    if recorded is True:
        # The /go/ redirect stored this visit already; the tracker asks only for the reward.
        count_or_refuse(program)
        return 202, _with_coupon({"visitor_id": visitor_id, "attributed": True}, affiliate[0], program.pk)
    stored = click_record(
        limit="click",
        program=program,
        affiliate_id=affiliate[0],
        visitor_id=visitor_id,
        url=url,
        referrer=referrer,
        user_agent=user_agent,
        ip=ip,
        country=country,
        source="script",
        now=now,
    )
    if not stored:
        dropped_click_count(program_id=program.pk, reason=DroppedClickDaily.Reason.RATE_LIMIT, now=now)
        raise limited()
    return 202, _with_coupon({"visitor_id": visitor_id, "attributed": True}, affiliate[0], program.pk)


def _with_coupon(body: dict, affiliate_id: int, program_id: int) -> dict:
    from . import lookup

    coupon = lookup.coupon_for(affiliate_id, program_id)
    if coupon is not None:
        body["coupon"] = coupon
    return body
