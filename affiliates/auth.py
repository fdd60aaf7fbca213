"""Bearer secret-key authentication for the merchant and automation APIs."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from refapp import ratelimit
from refapp.api import ApiError
from refapp.hashing import client_ip
from refapp.models import Actor

from .models import ApiKey, Program
from .services import hash_secret


@dataclass(frozen=True)
class KeyContext:
    key: ApiKey
    program: Program
    livemode: bool

    @property
    def actor(self) -> Actor:
        return Actor(f"api:{self.key.prefix}")


_keys: dict[str, tuple[float, ApiKey | None]] = {}


def _key_by_hash(key_hash: str) -> ApiKey | None:
    """Key lookups are cached for a few seconds per process (REFAPP_API_KEY_CACHE_SECONDS): a merchant
    backend sends bursts with one key. Revoking takes effect within that many seconds."""
    ttl = settings.REFAPP_API_KEY_CACHE_SECONDS
    now = time.monotonic()
    hit = _keys.get(key_hash)
    if hit and hit[0] > now:
        return hit[1]
    key = ApiKey.objects.select_related("program").filter(key_hash=key_hash).first()
    if ttl > 0:
        if len(_keys) > 1000:
            _keys.clear()
        _keys[key_hash] = (now + ttl, key)
    return key


def authenticate(request: HttpRequest) -> KeyContext:
    return authenticate_meta(request.META)


def authenticate_meta(meta: Mapping[str, Any]) -> KeyContext:
    """The key context of a request's headers (a Django request's META or a WSGI environ).

    Failed authentication is throttled per client address (docs/architecture.md, "Security"): the key is checked
    first and only failures count, so a valid key from a throttled address still gets in, and
    nothing else (clicks do not authenticate) shares the budget. Fails open without Redis.
    """
    try:
        return _authenticate(meta)
    except ApiError as exc:
        if exc.status != 401:
            raise
        if ratelimit.hit("auth-fail", client_ip(SimpleNamespace(META=meta))):
            raise
        window = 60
        retry_after = window - int(time.time()) % window
        raise ApiError(
            429,
            "rate_limited",
            f"Too many failed authentications from this address; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        ) from exc


def _authenticate(meta: Mapping[str, Any]) -> KeyContext:
    header = meta.get("HTTP_AUTHORIZATION", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "missing_api_key", "Send your secret key as 'Authorization: Bearer sk_live_…'.")
    secret = secret.strip()
    if not (secret.startswith("sk_live_") or secret.startswith("sk_test_")):
        raise ApiError(401, "invalid_api_key", "The API key is not valid.")
    key = _key_by_hash(hash_secret(secret))
    if key is None or key.revoked_at is not None:
        raise ApiError(401, "invalid_api_key", "The API key is not valid or has been revoked.")
    if not ratelimit.hit_leased("api", f"key:{key.pk}"):
        raise ApiError(429, "rate_limited", "Too many requests for this key; slow down.")
    now = timezone.now()
    # Touch last_used_at at most once a minute: a write per request would serialise the hot path.
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now  # the cached copy too, or every request would write the row again
    return KeyContext(key=key, program=key.program, livemode=key.livemode)


def check_program(ctx: KeyContext, slug: object) -> None:
    """A body that names a program must name the key's own."""
    if slug is not None and slug != ctx.program.slug:
        raise ApiError(403, "wrong_program", "This key belongs to another program.")
