"""Writes the affiliates make themselves: join applications, portal sign-in, their own settings.

Join applications and email verification
----------------------------------------
An application must not create an Affiliate before its email is verified (unverified rows would
fill the admins' queue and block the address for its real owner), and MagicLink has no field for
the form data. So the verification URL carries the application itself, signed with
`django.core.signing` (tamper-proof; not encrypted, but it travels only to the applicant's own
inbox and holds only what they typed), together with the token of a MagicLink(purpose=verify).
The MagicLink makes the URL single-use and expiring, and it, not the signed payload, is the
authority for the email and the program.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.db import transaction
from django.urls import reverse

from refapp.emails import send_templated
from refapp.hashing import salted_hash
from refapp.models import Actor, audit_log

from .magic import VERIFY_TTL, link_consume, link_create, link_peek, login_link_deliver
from .models import Affiliate, MagicLink, PortalSession, Program, ProgramStaff
from .services import Conflict, affiliate_create

JOIN_SALT = "refapp.join.verify"


def affiliate_actor(affiliate: Affiliate) -> Actor:
    return Actor(f"affiliate:{affiliate.public_id}")


# --- magic links --------------------------------------------------------------------------


def link_usable(*, token: str, purpose: str, now: datetime, program: Program | None = None) -> bool:
    """Whether a link would be accepted, without using it (for the confirm page before the POST)."""
    link = link_peek(token=token, purpose=purpose, now=now)
    return link is not None and (program is None or link.program_id == program.pk)


# --- portal sign-in -----------------------------------------------------------------------


def portal_sessions_record(*, email: str, ip: str, now: datetime) -> int:
    """Remember the network of a sign-in for every membership of the email.

    One sign-in covers all the programs of the email, and each program checks self-referral
    against its own affiliate row, so each membership gets its own row.
    """
    ip_hash = salted_hash("ip", ip) if ip else ""
    if not ip_hash:
        return 0
    memberships = Affiliate.objects.filter(email=email.strip().lower(), livemode=True).exclude(
        status=Affiliate.Status.REJECTED
    )
    rows = [PortalSession(affiliate=a, ip_hash=ip_hash, created_at=now) for a in memberships]
    PortalSession.objects.bulk_create(rows)
    return len(rows)


# --- the affiliate's own settings ---------------------------------------------------------


def affiliate_payout_paypal_set(*, affiliate: Affiliate, paypal_email: str) -> Affiliate:
    """Pay this membership by PayPal to the given address. Audited: it decides where money goes."""
    paypal_email = paypal_email.strip().lower()
    with transaction.atomic():
        locked = Affiliate.objects.select_for_update().get(pk=affiliate.pk)
        previous = {"method": locked.payout_method, "paypal_email": locked.paypal_email}
        if previous == {"method": Affiliate.PayoutMethod.PAYPAL, "paypal_email": paypal_email}:
            return locked
        locked.payout_method = Affiliate.PayoutMethod.PAYPAL
        locked.paypal_email = paypal_email
        locked.save(update_fields=["payout_method", "paypal_email"])
        audit_log(
            actor=affiliate_actor(locked),
            action="affiliate.payout_method_changed",
            obj=locked,
            data={"from": previous, "to": {"method": "paypal", "paypal_email": paypal_email}},
        )
    return locked


def affiliate_profile_update(*, affiliate: Affiliate, name: str, website: str, promotion: str) -> Affiliate:
    with transaction.atomic():
        locked = Affiliate.objects.select_for_update().get(pk=affiliate.pk)
        changed = {
            field: value
            for field, value in {"name": name, "website": website, "promotion": promotion}.items()
            if getattr(locked, field) != value
        }
        if not changed:
            return locked
        for field, value in changed.items():
            setattr(locked, field, value)
        locked.save(update_fields=list(changed))
        audit_log(
            actor=affiliate_actor(locked),
            action="affiliate.profile_changed",
            obj=locked,
            data={"fields": sorted(changed)},
        )
    return locked


# --- join applications --------------------------------------------------------------------


@dataclass(frozen=True)
class Application:
    name: str
    email: str
    website: str = ""
    promotion: str = ""
    terms_accepted: bool = False


def join_application_start(*, program: Program, application: Application, now: datetime) -> None:
    """Queue the handling of an application; the worker emails a verification link or a sign-in link.

    The request does the same work whatever the email (one task queued after commit), so that the
    time of the answer does not tell whether the address already belongs to this program.
    """
    payload = {
        "name": application.name,
        "email": application.email.strip().lower(),
        "website": application.website,
        "promotion": application.promotion,
        "terms_accepted": application.terms_accepted,
    }
    transaction.on_commit(lambda: join_application_send.delay(program.pk, payload, now.isoformat()))


@shared_task(acks_late=True)
def join_application_send(program_id: int, application: dict, now_iso: str) -> bool:
    program = Program.objects.filter(pk=program_id).first()
    if program is None:
        return False
    return join_application_deliver(
        program=program, application=Application(**application), now=datetime.fromisoformat(now_iso)
    )


def join_application_deliver(*, program: Program, application: Application, now: datetime) -> bool:
    """Email a verification link for a new application; returns whether one was sent (in the worker).

    An email that already belongs to this program gets a sign-in link instead (when it may sign
    in), and nothing is created.
    """
    email = application.email.strip().lower()
    existing = Affiliate.objects.filter(program=program, email=email).first()
    if existing is not None:
        if existing.status != Affiliate.Status.REJECTED:
            login_link_deliver(email=email, now=now, next_path="/portal/")
        return False
    with transaction.atomic():
        token = link_create(purpose=MagicLink.Purpose.VERIFY, email=email, now=now, program=program)
        payload = {
            "t": token,
            "n": application.name,
            "w": application.website,
            "p": application.promotion,
            "a": application.terms_accepted,
        }
        signed = signing.dumps(payload, salt=JOIN_SALT, compress=True)
        url = settings.BASE_URL + reverse("join:verify", args=[program.slug, signed])
        send_templated(
            "join_verify",
            to=[email],
            context={
                "name": application.name,
                "program": program.name,
                "url": url,
                "days": VERIFY_TTL.days,
            },
        )
    return True


class InvalidJoinLink(Exception):
    """Unknown, tampered, expired or already used verification link."""


def _read_join_token(signed: str) -> dict:
    try:
        data = signing.loads(signed, salt=JOIN_SALT, max_age=VERIFY_TTL)
    except signing.BadSignature as exc:  # includes SignatureExpired
        raise InvalidJoinLink from exc
    if not isinstance(data, dict) or not isinstance(data.get("t"), str):
        raise InvalidJoinLink
    return data


def join_link_usable(*, program: Program, signed: str, now: datetime) -> bool:
    try:
        data = _read_join_token(signed)
    except InvalidJoinLink:
        return False
    return link_usable(token=data["t"], purpose=MagicLink.Purpose.VERIFY, now=now, program=program)


def program_admin_emails(program: Program) -> list[str]:
    """Who hears about new applications: the program's admins, else the superusers."""
    admins = User.objects.filter(
        is_active=True,
        program_roles__program=program,
        program_roles__role=ProgramStaff.Role.ADMIN,
    ).exclude(email="")
    emails = sorted({u.email for u in admins})
    if not emails:
        emails = sorted(
            set(
                User.objects.filter(is_active=True, is_superuser=True)
                .exclude(email="")
                .values_list("email", flat=True)
            )
        )
    return emails


def join_application_verify(*, program: Program, signed: str, now: datetime) -> Affiliate:
    """Use a verification link: create the affiliate (active when the program auto-approves).

    Single use: the MagicLink is consumed in the same transaction that creates the affiliate, so a
    failure leaves the link usable and a replay finds it used. If the email joined meanwhile (a
    second application, an admin invite), the existing membership is returned and nothing is sent.
    """
    data = _read_join_token(signed)
    with transaction.atomic():
        link = link_consume(token=data["t"], purpose=MagicLink.Purpose.VERIFY, now=now)
        if link is None or link.program_id != program.pk:
            raise InvalidJoinLink
        status = Affiliate.Status.ACTIVE if program.auto_approve else Affiliate.Status.PENDING
        try:
            affiliate = affiliate_create(
                program=program,
                email=link.email,
                name=str(data.get("n", ""))[:200] or link.email.split("@")[0],
                status=status,
                actor=Actor(f"applicant:{link.email}"[:100]),
                website=str(data.get("w", ""))[:500],
                promotion=str(data.get("p", "")),
            )
        except Conflict:
            existing = Affiliate.objects.filter(program=program, email=link.email).first()
            if existing is None:
                raise  # a code race, not a duplicate email: let the applicant retry the link
            return existing
        if program.terms_url:
            audit_log(
                actor=Actor(f"applicant:{link.email}"[:100]),
                action="affiliate.terms_accepted",
                obj=affiliate,
                data={"terms_url": program.terms_url, "accepted": bool(data.get("a")), "at": now.isoformat()},
            )
        _notify_new_affiliate(program=program, affiliate=affiliate)
    return affiliate


def _notify_new_affiliate(*, program: Program, affiliate: Affiliate) -> None:
    panel_url = settings.BASE_URL + reverse(
        "panel:affiliate-detail", args=[program.slug, affiliate.public_id]
    )
    recipients = program_admin_emails(program)
    if recipients:
        send_templated(
            "join_admin_notice",
            to=recipients,
            context={
                "program": program.name,
                "name": affiliate.name,
                "email": affiliate.email,
                "website": affiliate.website,
                "promotion": affiliate.promotion,
                "status": affiliate.status,
                "url": panel_url,
            },
        )
    portal_url = settings.BASE_URL + reverse("portal:login")
    name = "join_welcome" if affiliate.status == Affiliate.Status.ACTIVE else "join_received"
    send_templated(
        name,
        to=[affiliate.email],
        context={"name": affiliate.name, "program": program.name, "portal_url": portal_url},
    )
