"""Does a program have an active webhook endpoint? One cached answer per program.

Asked for every change of the domain (refapp.models.audit_watched), so a program with no endpoint
pays one cache read per change and nothing else. The entry is dropped when an endpoint of the
program changes: at once, and again at commit, so a concurrent reader that put the old answer
back is corrected; another process's local cache (the embedded default) may keep it up to
CACHE_SECONDS.
"""

from __future__ import annotations

from django.core.cache import cache
from django.db import transaction

from .models import WebhookEndpoint

CACHE_SECONDS = 60


def _key(program_id: int) -> str:
    return f"webhooks:watched:{program_id}"


def program_watched(program_id: int) -> bool:
    key = _key(program_id)
    watched = cache.get(key)
    if watched is None:
        watched = WebhookEndpoint.objects.filter(program_id=program_id, is_active=True).exists()
        cache.set(key, watched, CACHE_SECONDS)
    return watched


def forget_program(program_id: int) -> None:
    cache.delete(_key(program_id))
    transaction.on_commit(lambda: cache.delete(_key(program_id)))
