"""Writes for programs, affiliates and API keys. Each is one transaction and audited."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from refapp.models import Actor, audit_log

from .models import Affiliate, ApiKey, PartnerGroup, Program


class Conflict(Exception):
    """A unique value (code, email, slug) is already taken."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def program_create(
    *, slug: str, name: str, website: str, currency: str = "USD", actor: Actor | None = None, **options
) -> Program:
    with transaction.atomic():
        if Program.objects.filter(slug=slug).exists():
            raise Conflict("slug", f"A program with slug {slug!r} already exists.")
        program = Program(slug=slug, name=name, website=website, currency=currency.upper(), **options)
        program.full_clean()
        program.save()
        audit_log(actor=actor, action="program.created", obj=program, data={"slug": slug})
    return program


def apikey_create(
    *, program: Program, mode: str = ApiKey.Mode.LIVE, name: str = "", actor: Actor | None = None
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never stored and never shown again."""
    secret = f"sk_{mode}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            program=program, mode=mode, name=name, key_hash=hash_secret(secret), prefix=secret[:12]
        )
        audit_log(
            actor=actor, action="apikey.created", obj=program, data={"prefix": key.prefix, "mode": mode}
        )
    return key, secret


def apikey_revoke(*, key: ApiKey, actor: Actor | None = None) -> ApiKey:
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if updated:
            audit_log(actor=actor, action="apikey.revoked", obj=key.program, data={"prefix": key.prefix})
    key.refresh_from_db()
    return key


def _unique_code(program: Program, base: str) -> str:
    base = "".join(ch for ch in base if ch.isalnum())[:20] or "partner"
    candidate = base.lower()
    while Affiliate.objects.filter(program=program, code_key=candidate.lower()).exists():
        candidate = f"{base.lower()}{secrets.randbelow(9000) + 1000}"
    return candidate


def affiliate_create(
    *,
    program: Program,
    email: str,
    name: str,
    code: str | None = None,
    status: str = Affiliate.Status.PENDING,
    group: PartnerGroup | None = None,
    actor: Actor | None = None,
    **extra,
) -> Affiliate:
    email = email.strip().lower()
    with transaction.atomic():
        if Affiliate.objects.filter(program=program, email=email).exists():
            raise Conflict("email", "An affiliate with this email already exists in this program.")
        if code and Affiliate.objects.filter(program=program, code_key=code.lower()).exists():
            raise Conflict("code", f"The code {code!r} is already taken in this program.")
        affiliate = Affiliate(
            program=program,
            email=email,
            name=name,
            code=code or _unique_code(program, name or email.split("@")[0]),
            status=status,
            group=group,
            approved_at=timezone.now() if status == Affiliate.Status.ACTIVE else None,
            **extra,
        )
        try:
            with transaction.atomic():
                affiliate.save()
        except IntegrityError as exc:  # a concurrent request took the code or email first
            raise Conflict("code", "The code or email was taken by a concurrent request.") from exc
        audit_log(
            actor=actor,
            action="affiliate.created",
            obj=affiliate,
            data={"status": status, "code": affiliate.code},
        )
    return affiliate


ALLOWED_TRANSITIONS = {
    Affiliate.Status.PENDING: {Affiliate.Status.ACTIVE, Affiliate.Status.REJECTED},
    Affiliate.Status.ACTIVE: {Affiliate.Status.SUSPENDED},
    Affiliate.Status.SUSPENDED: {Affiliate.Status.ACTIVE, Affiliate.Status.REJECTED},
    Affiliate.Status.REJECTED: {Affiliate.Status.ACTIVE},
}


class InvalidTransition(Exception):
    pass


def affiliate_set_status(
    *, affiliate: Affiliate, status: str, reason: str = "", actor: Actor | None = None
) -> Affiliate:
    """Approve, reject, suspend or reactivate. Setting the current status again is a no-op."""
    with transaction.atomic():
        locked = Affiliate.objects.select_for_update().get(pk=affiliate.pk)
        if locked.status == status:
            return locked
        if status not in ALLOWED_TRANSITIONS.get(locked.status, set()):
            raise InvalidTransition(f"An affiliate cannot go from {locked.status} to {status}.")
        previous = locked.status
        locked.status = status
        locked.status_reason = reason[:500]
        if status == Affiliate.Status.ACTIVE and not locked.approved_at:
            locked.approved_at = timezone.now()
        locked.save(update_fields=["status", "status_reason", "approved_at"])
        audit_log(
            actor=actor, action=f"affiliate.{status}", obj=locked, data={"from": previous, "reason": reason}
        )
        if previous == Affiliate.Status.PENDING and status in (
            Affiliate.Status.ACTIVE,
            Affiliate.Status.REJECTED,
        ):
            _notify_decision(locked, status, reason)
    return locked


def affiliate_set_group(
    *, affiliate: Affiliate, group: PartnerGroup | None, actor: Actor | None = None
) -> Affiliate:
    with transaction.atomic():
        Affiliate.objects.filter(pk=affiliate.pk).update(group=group)
        audit_log(
            actor=actor,
            action="affiliate.group_changed",
            obj=affiliate,
            data={"group": group.public_id if group else None},
        )
    affiliate.refresh_from_db()
    return affiliate


def _notify_decision(affiliate: Affiliate, status: str, reason: str) -> None:
    """Tell an applicant the outcome of their application (queued after commit)."""
    from refapp.emails import send_templated

    context = {
        "name": affiliate.name,
        "program": affiliate.program.name,
        "reason": reason,
        "portal_url": settings.BASE_URL + reverse("portal:login"),
    }
    name = "affiliate_approved" if status == Affiliate.Status.ACTIVE else "affiliate_rejected"
    send_templated(name, to=[affiliate.email], context=context)


def affiliate_invite(
    *,
    program: Program,
    email: str,
    name: str,
    code: str | None = None,
    group: PartnerGroup | None = None,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> Affiliate:
    """Create an active affiliate and email them a single-use sign-in link to the portal."""
    from refapp.emails import send_templated

    from .magic import link_create

    now = now or timezone.now()
    with transaction.atomic():
        affiliate = affiliate_create(
            program=program,
            email=email,
            name=name,
            code=code,
            status=Affiliate.Status.ACTIVE,
            group=group,
            actor=actor,
        )
        token = link_create(purpose="login", email=affiliate.email, now=now)
        send_templated(
            "affiliate_invited",
            to=[affiliate.email],
            context={
                "name": affiliate.name,
                "program": program.name,
                "url": settings.BASE_URL + reverse("portal:magic", args=[token]),
                "code": affiliate.code,
                "minutes": 30,
            },
        )
    return affiliate
