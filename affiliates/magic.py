"""Single-use emailed links: portal sign-in (30 minutes) and join-application email verification."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlencode

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.urls import reverse

from refapp.emails import send_templated

from .models import Affiliate, MagicLink, Program

LOGIN_TTL = timedelta(minutes=30)
VERIFY_TTL = timedelta(days=2)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_create(
    *,
    purpose: str,
    email: str,
    now: datetime,
    program: Program | None = None,
    affiliate: Affiliate | None = None,
) -> str:
    """Store the hash of a fresh token and return the token (it only ever travels in the email)."""
    token = secrets.token_urlsafe(32)
    # Join verification waits days for the applicant; every other link (sign-in, a customer
    # referrer's page) expires like a sign-in link.
    ttl = VERIFY_TTL if purpose == MagicLink.Purpose.VERIFY else LOGIN_TTL
    MagicLink.objects.create(
        purpose=purpose,
        email=email.strip().lower(),
        program=program,
        affiliate=affiliate,
        token_hash=_hash(token),
        created_at=now,
        expires_at=now + ttl,
    )
    return token


def link_peek(*, token: str, purpose: str, now: datetime) -> MagicLink | None:
    """The link if it is still usable, without using it (for a confirm page before sign-in)."""
    link = MagicLink.objects.filter(token_hash=_hash(token), purpose=purpose).first()
    if link is None or link.used_at is not None or link.expires_at <= now:
        return None
    return link


def link_consume(*, token: str, purpose: str, now: datetime) -> MagicLink | None:
    """Use a link once. Expired, unknown or already used links give None, all alike."""
    with transaction.atomic():
        link = MagicLink.objects.select_for_update().filter(token_hash=_hash(token), purpose=purpose).first()
        if link is None or link.used_at is not None or link.expires_at <= now:
            return None
        link.used_at = now
        link.save(update_fields=["used_at"])
    return link


def send_login_link(*, email: str, now: datetime, next_path: str = "") -> None:
    """Queue a sign-in link for this email, whoever it belongs to.

    The request does the same work for every address (one task queued after commit); the worker
    looks the email up and sends a link only to an affiliate who may sign in. Doing the lookup, the
    link insert and the email rendering here made a known email answer about twice as slowly as an
    unknown one, which told an attacker which emails are affiliates.
    """
    email = email.strip().lower()
    transaction.on_commit(lambda: login_link_send.delay(email, now.isoformat(), next_path))


@shared_task(acks_late=True)
def login_link_send(email: str, now_iso: str, next_path: str = "") -> bool:
    return login_link_deliver(email=email, now=datetime.fromisoformat(now_iso), next_path=next_path)


def login_link_deliver(*, email: str, now: datetime, next_path: str = "") -> bool:
    """Email a sign-in link if this email belongs to an affiliate who may sign in (in the worker).

    Returns whether an email was queued.
    """
    email = email.strip().lower()
    memberships = list(
        Affiliate.objects.filter(email=email, livemode=True)  # test affiliates never sign in
        .exclude(status=Affiliate.Status.REJECTED)
        .select_related("program")
    )
    if not memberships:
        return False
    token = link_create(purpose=MagicLink.Purpose.LOGIN, email=email, now=now)
    url = settings.BASE_URL + reverse("portal:magic", args=[token])
    if next_path.startswith("/portal/"):
        url += "?" + urlencode({"next": next_path})
    send_templated(
        "login_link",
        to=[email],
        context={
            "url": url,
            "name": memberships[0].name,
            "programs": [m.program.name for m in memberships],
            "minutes": 30,
        },
    )
    return True
