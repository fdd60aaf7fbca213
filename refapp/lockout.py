"""The one sign-in policy of every staff login path (DESIGN.md section 7): after LOCKOUT_FAILURES
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
    return any((cache.get(key) or 0) >= LOCKOUT_FAILURES for key in _keys(request, username))


def staff_sign_in(request: HttpRequest, *, username: str, password: str) -> StaffSignIn:
    """Check a staff sign-in under the lockout. While locked the password is not even checked, so
    the right one does not get in either; a failure counts against the username and the address,
    a success clears both."""
    keys = _keys(request, username)
    if is_locked(request, username):
        return StaffSignIn(user=None, locked=True)
    user = authenticate(request, username=username, password=password)
    attempt = StaffSignIn(user=user, locked=False)
    if attempt.ok:
        for key in keys:
            cache.delete(key)
        return attempt
    for key in keys:
        # add() creates the counter with its expiry; later failures count within that window.
        if not cache.add(key, 1, timeout=LOCKOUT_SECONDS):
            cache.incr(key)
    return attempt
