"""Program and affiliate lookups for the click hot path, cached briefly in process memory.

Clicks arrive in bursts for the same program and code; a few seconds of staleness (a code suspended
30 s ago still records clicks) is acceptable for clicks, because attribution at conversion time
re-reads the affiliate's status from the database.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import connection

from affiliates import rewards
from affiliates.models import Affiliate, Program

_lock = threading.Lock()
_programs: dict[str, tuple[float, Program | None]] = {}
_affiliates: dict[tuple[int, str], tuple[float, tuple[int, str] | None]] = {}
_coupons: dict[int, tuple[float, dict[str, str] | None]] = {}
_offers: dict[int, tuple[float, bool]] = {}
_MAX_ENTRIES = 10_000
# A miss's query written out: building it with the ORM cost about 300 µs of Python (405 µs of CPU
# per lookup against 90 µs, measured), and every code misses again every TTL in every process.
# A code is unique within its program (affiliate_unique_code_per_program), so one row at most.
_ACTIVE_AFFILIATE_SQL = (
    f"SELECT id, code FROM {Affiliate._meta.db_table} WHERE program_id = %s AND code_key = %s AND status = %s"
)


def _ttl() -> int:
    return settings.REFAPP_PROGRAM_CACHE_SECONDS


def program_by_slug(slug: str) -> Program | None:
    now = time.monotonic()
    hit = _programs.get(slug)
    if hit and hit[0] > now:
        return hit[1]
    program = Program.objects.filter(slug=slug).first()
    if _ttl() > 0:
        with _lock:
            if len(_programs) > _MAX_ENTRIES:
                _programs.clear()
            _programs[slug] = (now + _ttl(), program)
    return program


def active_affiliate_by_code(program: Program, code: str) -> tuple[int, str] | None:
    """(affiliate id, canonical code) of the active affiliate with this code, or None."""
    key = (program.pk, code.lower())
    now = time.monotonic()
    hit = _affiliates.get(key)
    if hit and hit[0] > now:
        return hit[1]
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE_AFFILIATE_SQL, [program.pk, code.lower(), Affiliate.Status.ACTIVE])
        row = cursor.fetchone()
    if _ttl() > 0:
        with _lock:
            if len(_affiliates) > _MAX_ENTRIES:
                _affiliates.clear()
            _affiliates[key] = (now + _ttl(), row)
    return row


def _program_offers_reward(program_id: int, now: float) -> bool:
    hit = _offers.get(program_id)
    if hit and hit[0] > now:
        return hit[1]
    offers = rewards.program_offers_reward(program_id)
    if _ttl() > 0:
        with _lock:
            if len(_offers) > _MAX_ENTRIES:
                _offers.clear()
            _offers[program_id] = (now + _ttl(), offers)
    return offers


def coupon_for(affiliate_id: int, program_id: int) -> dict[str, str] | None:
    """What a visitor referred by this affiliate is offered ({"code", "label"}, or None), cached like
    the code lookup: a reward changed a few seconds ago may still show the old label. A program
    with no active reward answers None from one cached query per program: asked per affiliate, the
    misses of a thousand affiliates halved the click rate at c16 (bench/LOG.md, 2026-12-07)."""
    now = time.monotonic()
    if not _program_offers_reward(program_id, now):
        return None
    hit = _coupons.get(affiliate_id)
    if hit and hit[0] > now:
        return hit[1]
    affiliate = Affiliate.objects.filter(pk=affiliate_id).select_related("program").first()
    coupon = rewards.coupon_for(affiliate) if affiliate is not None else None
    if _ttl() > 0:
        with _lock:
            if len(_coupons) > _MAX_ENTRIES:
                _coupons.clear()
            _coupons[affiliate_id] = (now + _ttl(), coupon)
    return coupon


def clear() -> None:
    with _lock:
        _programs.clear()
        _affiliates.clear()
        _coupons.clear()
        _offers.clear()
