"""Program and affiliate lookups for the click hot path, cached briefly in process memory.

Clicks arrive in bursts for the same program and code; a few seconds of staleness (a code suspended
30 s ago still records clicks) is acceptable for clicks, because attribution at conversion time
re-reads the affiliate's status from the database.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings

from affiliates.models import Affiliate, Program

_lock = threading.Lock()
_programs: dict[str, tuple[float, Program | None]] = {}
_affiliates: dict[tuple[int, str], tuple[float, tuple[int, str] | None]] = {}
_MAX_ENTRIES = 10_000


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
    row = (
        Affiliate.objects.filter(program=program, code_key=code.lower(), status=Affiliate.Status.ACTIVE)
        .values_list("pk", "code")
        .first()
    )
    if _ttl() > 0:
        with _lock:
            if len(_affiliates) > _MAX_ENTRIES:
                _affiliates.clear()
            _affiliates[key] = (now + _ttl(), row)
    return row


def clear() -> None:
    with _lock:
        _programs.clear()
        _affiliates.clear()
