"""Refer-a-friend for customers: enrolling a customer as a referrer, and the emailed link to their page.

A customer referrer is an `Affiliate` of kind `customer` (docs/decisions.md, issue 16 item 4): active
at once, bound to the merchant's customer id, so that links, /go/, attribution and commissions work
for them unchanged. What they earn is decided by the program's customer-reward settings
(`commissions.friends`), not by its commission rules.
"""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.urls import reverse

from refapp.emails import send_templated
from refapp.models import Actor

from .magic import LOGIN_TTL, link_create, link_peek
from .models import Affiliate, MagicLink, Program
from .services import Conflict, affiliate_create


class CustomerReferralsOff(Exception):
    """The program does not enrol customers as referrers."""


def referrer_for_customer(*, program: Program, livemode: bool, customer_id: str) -> Affiliate | None:
    return (
        Affiliate.objects.select_related("program", "group")
        .filter(program=program, livemode=livemode, customer_id=customer_id)
        .first()
    )


def referrer_enrol(
    *, program: Program, livemode: bool, email: str, customer_id: str, name: str = "", actor: Actor | None
) -> tuple[Affiliate, bool]:
    """Enrol a customer as a referrer, or return the one already enrolled for this customer id.

    Returns (referrer, created). Idempotent by customer: the same customer id always answers the
    same referrer, whatever email or name a repeat carries (the first enrolment's stay). Concurrent
    first enrolments race on the unique (program, livemode, customer_id) index; the loser reads the
    winner's row. Raises CustomerReferralsOff when the program does not enrol customers, and
    Conflict when the email already belongs to another member of the program.
    """
    existing = referrer_for_customer(program=program, livemode=livemode, customer_id=customer_id)
    if existing is not None:
        return existing, False
    if not program.customer_referrals:
        raise CustomerReferralsOff
    email = email.strip().lower()
    try:
        affiliate = affiliate_create(
            program=program,
            email=email,
            name=name or email.split("@")[0],
            status=Affiliate.Status.ACTIVE,
            actor=actor,
            livemode=livemode,
            kind=Affiliate.Kind.CUSTOMER,
            customer_id=customer_id,
        )
    except Conflict:
        existing = referrer_for_customer(program=program, livemode=livemode, customer_id=customer_id)
        if existing is not None:  # a concurrent enrolment of the same customer won the race
            return existing, False
        raise
    return affiliate, True


# --- the customer's own page, reached by an emailed link -----------------------------------------


def referrer_link_request(*, program: Program, email: str, now: datetime) -> None:
    """Queue the email with a link to the referrer's page, whoever the address belongs to.

    Like the portal's sign-in (affiliates.magic.send_login_link), the request does the same work for
    every address and the worker decides, so the answer's timing does not tell who is enrolled.
    """
    email = email.strip().lower()
    transaction.on_commit(lambda: referrer_link_send.delay(program.pk, email, now.isoformat()))


@shared_task(acks_late=True)
def referrer_link_send(program_id: int, email: str, now_iso: str) -> bool:
    program = Program.objects.filter(pk=program_id).first()
    if program is None:
        return False
    return referrer_link_deliver(program=program, email=email, now=datetime.fromisoformat(now_iso))


def referrer_link_deliver(*, program: Program, email: str, now: datetime) -> bool:
    """Email the link to their page to an active live customer referrer of the program (in the
    worker). Returns whether an email was queued."""
    referrer = Affiliate.objects.filter(
        program=program,
        email=email.strip().lower(),
        livemode=True,
        kind=Affiliate.Kind.CUSTOMER,
        status=Affiliate.Status.ACTIVE,
    ).first()
    if referrer is None:
        return False
    with transaction.atomic():
        token = link_create(
            purpose=MagicLink.Purpose.REFERRER,
            email=referrer.email,
            now=now,
            program=program,
            affiliate=referrer,
        )
        send_templated(
            "referrer_link",
            to=[referrer.email],
            context={
                "name": referrer.name,
                "program": program.name,
                "url": settings.BASE_URL + reverse("refer:page", args=[program.slug, token]),
                "minutes": int(LOGIN_TTL.total_seconds() // 60),
            },
        )
    return True


def referrer_by_link(*, program: Program, token: str, now: datetime) -> Affiliate | None:
    """The referrer an unexpired page link names. The page only shows what the referrer shares
    anyway (their link and code, their rewards), and signs nobody in; so the link is not used up
    by opening it (mail scanners open links), it just expires like a sign-in link."""
    link = link_peek(token=token, purpose=MagicLink.Purpose.REFERRER, now=now)
    if link is None or link.program_id != program.pk or link.affiliate_id is None:
        return None
    return (
        Affiliate.objects.select_related("program")
        .filter(pk=link.affiliate_id, kind=Affiliate.Kind.CUSTOMER, status=Affiliate.Status.ACTIVE)
        .first()
    )
