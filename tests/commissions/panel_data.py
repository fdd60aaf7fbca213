"""Rows for the panel tests, written straight to the database (the API tests cover how they arise)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from affiliates.models import Affiliate, Program, ProgramStaff
from commissions.models import Commission, CommissionRule, FraudFlag
from tracking.models import Click, Event


def make_event(
    program: Program,
    affiliate: Affiliate | None = None,
    *,
    amount_cents: int = 10_000,
    order_id: str | None = None,
    name: str = "sale",
    occurred_at: datetime | None = None,
    livemode: bool = True,
    attribution: str = "",
    click: Click | None = None,
) -> Event:
    when = occurred_at or timezone.now()
    return Event.objects.create(
        program=program,
        livemode=livemode,
        name=name,
        order_id=order_id,
        amount_cents=amount_cents,
        currency=program.currency,
        occurred_at=when,
        received_at=when,
        affiliate=affiliate,
        click=click,
        referral_code=affiliate.code if affiliate and attribution == "code" else "",
        attribution=attribution or (Event.Attribution.CODE if affiliate else Event.Attribution.NONE),
    )


def make_commission(
    affiliate: Affiliate,
    *,
    amount_cents: int = 2_000,
    status: str = Commission.Status.PENDING,
    event: Event | None = None,
    rule: CommissionRule | None = None,
    created_at: datetime | None = None,
    livemode: bool = True,
    kind: str = Commission.Kind.COMMISSION,
    reverses: Commission | None = None,
    order_id: str | None = None,
) -> Commission:
    when = created_at or timezone.now()
    program = affiliate.program
    event = event or make_event(program, affiliate, occurred_at=when, livemode=livemode, order_id=order_id)
    return Commission.objects.create(
        program=program,
        livemode=livemode,
        affiliate=affiliate,
        event=event,
        rule=rule,
        kind=kind,
        reverses=reverses,
        amount_cents=amount_cents,
        currency=program.currency,
        status=status,
        hold_until=when + timedelta(days=program.hold_days),
        inputs={
            "rule": rule.public_id if rule else None,
            "type": "percent",
            "rate_bp": 2000,
            "event_amount_cents": event.amount_cents,
            "amount_cents": amount_cents,
            "attribution": "code",
            "event": event.name,
            "currency": program.currency,
        },
        created_at=when,
    )


def make_click(
    program: Program, affiliate: Affiliate, *, created_at: datetime | None = None, **fields
) -> Click:
    return Click.objects.create(
        program=program,
        affiliate=affiliate,
        visitor_id=fields.pop("visitor_id", "visitor-0001"),
        created_at=created_at or timezone.now(),
        **fields,
    )


def make_flag(affiliate: Affiliate, commission: Commission) -> FraudFlag:
    return FraudFlag.objects.create(
        program=affiliate.program,
        affiliate=affiliate,
        event=commission.event,
        reason=FraudFlag.Reason.SELF_REFERRAL_EMAIL,
        details={"commissions": [commission.public_id], "order_id": commission.event.order_id},
        created_at=timezone.now(),
    )


def staff_client_with_role(program: Program, role: str, username: str = "viewer") -> Client:
    user = User.objects.create_user(
        username, f"{username}@acme.example", "correct horse battery", is_staff=True
    )
    ProgramStaff.objects.create(program=program, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def csv_lines(response) -> list[str]:
    assert response.streaming
    return b"".join(response.streaming_content).decode().splitlines()
