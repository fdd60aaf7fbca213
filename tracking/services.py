"""Click recording: the hot path. One cached lookup, one INSERT, no sessions, no templates."""

from __future__ import annotations

import functools
import re
import secrets
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from affiliates.models import Program
from refapp.hashing import ip_prefix_and_hash

from . import buffer
from .models import Click

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
) -> dict:
    """The clicks-table row of one visit."""
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


# The JSON click_ingest reads and answers (POST /api/v1/track/click, DESIGN.md 4.2).
CLICK_REQUEST_SCHEMA: dict = {
    "type": "object",
    "required": ["program", "ref"],
    "properties": {
        "program": {"type": "string", "maxLength": 50},
        "ref": {"type": "string", "maxLength": 64},
        "visitor_id": {"type": "string", "pattern": VISITOR_RE.pattern},
        "url": {"type": "string", "maxLength": 2000},
        "referrer": {"type": "string", "maxLength": 2000},
    },
}
CLICK_RESPONSE_SCHEMA: dict = {
    "type": "object",
    "required": ["visitor_id", "attributed"],
    "additionalProperties": False,
    "properties": {"visitor_id": {"type": "string"}, "attributed": {"type": "boolean"}},
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

    def count_or_refuse() -> None:
        if not ratelimit.hit("click", ip):
            raise limited()

    fields = Fields(data)
    slug = fields.str("program", required=True, max_length=50)
    code = fields.str("ref", required=True, max_length=64)
    visitor_id = fields.str("visitor_id", max_length=64)
    url = fields.str("url", max_length=2000, default="") or ""
    referrer = fields.str("referrer", max_length=2000, default="") or ""
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
        count_or_refuse()
        raise ApiError(403, "origin_not_allowed", "This origin may not report clicks for this program.")
    visitor_id = visitor_id or new_visitor_id()
    affiliate = lookup.active_affiliate_by_code(program, code or "")
    if affiliate is None or is_bot(user_agent):
        count_or_refuse()
        return 202, {"visitor_id": visitor_id, "attributed": False}
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
        raise limited()
    return 202, {"visitor_id": visitor_id, "attributed": True}
