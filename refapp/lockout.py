"""The one sign-in policy of every staff login path (docs/architecture.md, "Security"): after LOCKOUT_FAILURES
failed attempts for a username, or from an address, sign-in is refused for LOCKOUT_SECONDS.

The panel's login calls `staff_sign_in`; the Django admin's login page redirects to the panel's
(refapp/urls.py), so no path checks a password without this policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import authenticate
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.http import HttpRequest

from . import ratelimit
from .hashing import client_ip

LOCKOUT_FAILURES = 5
LOCKOUT_SECONDS = 15 * 60


@dataclass(frozen=True)
class StaffSignIn:
    user: AbstractBaseUser | None  # whose credentials these are, staff or not; None if wrong
    locked: bool

    @property
    def ok(self) -> bool:
        """The credentials are right and belong to an active staff user: log them in."""
        return not self.locked and self.user is not None and self.user.is_active and self.user.is_staff


def _keys(request: HttpRequest, username: str) -> list[str]:
    return [f"login-fail:user:{username.strip().lower()}", f"login-fail:ip:{client_ip(request)}"]


def is_locked(request: HttpRequest, username: str) -> bool:
    if ratelimit.redis_down():
        return False
    try:
        return any((cache.get(key) or 0) >= LOCKOUT_FAILURES for key in _keys(request, username))
    except ratelimit.UNREACHABLE as exc:
        # The counters live in the cache (Redis in production). Without it the password is still
        # checked; only the counting pauses, as the rate limits fail open (refapp/ratelimit.py),
        # rather than locking every admin out of the panel while Redis is down.
        ratelimit.redis_failed(exc)
        return False


def _count(keys: list[str], *, success: bool) -> None:
    if ratelimit.redis_down():
        return
    try:
        if success:
            cache.delete_many(keys)
            return
        for key in keys:
            # add() creates the counter with its expiry; later failures count within that window.
            if not cache.add(key, 1, timeout=LOCKOUT_SECONDS):
                cache.incr(key)
    except ratelimit.UNREACHABLE as exc:
        ratelimit.redis_failed(exc)


def staff_sign_in(request: HttpRequest, *, username: str, password: str) -> StaffSignIn:
    """Check a staff sign-in under the lockout. While locked the password is not even checked, so
    the right one does not get in either; a failure counts against the username and the address,
    a success clears both."""
    keys = _keys(request, username)
    if is_locked(request, username):
        return StaffSignIn(user=None, locked=True)
    user = authenticate(request, username=username, password=password)
    attempt = StaffSignIn(user=user, locked=False)
    _count(keys, success=attempt.ok)
    return attempt
