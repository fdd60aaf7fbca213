"""One conversion, from the report to the answer: the steps both writers share.

A conversion (`POST /api/v1/events`, a Stripe sale) is written by one of two writers: the ORM path
(`services._event_ingest`, every database) or the PostgreSQL path (`ingest_pg.event_ingest_pg`,
one read and one write statement). They differ only in how they read and how they write; what they
decide is taken here, by the same functions, in this order:

0. **The event.** `event_from_input` turns the report (`EventInput`) into the unsaved event row.
1. **Attribute.** Who gets the credit (docs/architecture.md, "Domain rules"): a customer already tied to a referral,
   else an active affiliate's referral code, else the visitor's click inside the cookie window.
   The ORM path asks `tracking.attribution.attribute`; the SQL path's read answers the same
   candidates in the same order. An unattributed event stops here, with no commissions.
2. **Referral.** The referral the event belongs to: the customer's, the visitor's open one, or a new
   one created by this event (`tracking.attribution.referral_for`, or a CTE of the SQL write).
   A suspended or inactive affiliate keeps the customer but earns nothing: stop here.
3. **Rule scope.** Of the active rules of the event's name, the most specific scope that has any
   (the affiliate, their active partner group, the program) wins, and all its rules apply
   (`calculation.choose_scope`, inside `conversion_rows`).
4. **Limits.** Each rule's `first_event_only`, `duration_months` and `max_events`, reading the
   referral's history only for a rule that asks (`calculation.evaluate_rules`, `ReferralHistory`);
   a rule that is spent is recorded as skipped, with its reason.
5. **Amounts.** What each remaining rule pays, tiers by the affiliate's month included, rounded
   half up once (`calculation.rule_pays`).
6. **Self-referral check.** The customer's email is the affiliate's, or the visit came from an
   address the affiliate signs in to the portal from (`self_referral`; the writer says how it
   knows the address: a query, or a column of the SQL read).
7. **Rows.** The commissions, pending until the hold ends or rejected when step 6 suspects the
   affiliate, each with the inputs that explain it; the fraud flag of a self-referral; the audit
   row (`conversion_rows`). The writer stores them with the event in one transaction.
8. **Answer.** The response body, stored on the event so a replay answers it again
   (`response_body`).

Nothing here reads or writes the database except the history reads of step 4 and the portal
check of step 6 (both asked only when needed); the writers do the rest. Only the writers import
this module; it imports neither of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import models

from affiliates.models import Program
from refapp.ids import new_public_id
from refapp.instances import unsaved
from refapp.models import Actor, AuditLog, audit_entry
from tracking.models import Event

from .calculation import ReferralHistory, choose_scope, evaluate_rules
from .models import Commission, CommissionRule, FraudFlag


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class EventInput:
    name: str
    order_id: str | None = None
    customer_id: str = ""
    visitor_id: str = ""
    referral_code: str = ""
    coupon_code: str = ""
    amount_cents: int = 0
    currency: str = "USD"
    customer_email_hash: str = ""
    ip_hash: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    source: str = "api"


# --- 0. the event --------------------------------------------------------------------------------


def event_from_input(*, program: Program, livemode: bool, data: EventInput, now: datetime) -> Event:
    """The unsaved, not yet attributed event of one report."""
    return unsaved(
        Event,
        public_id=new_public_id("evt"),
        program=program,
        livemode=livemode,
        name=data.name,
        order_id=data.order_id,
        customer_id=data.customer_id,
        visitor_id=data.visitor_id,
        referral_code=data.referral_code,
        coupon_code=data.coupon_code,
        amount_cents=data.amount_cents,
        currency=data.currency,
        customer_email_hash=data.customer_email_hash,
        ip_hash=data.ip_hash,
        metadata=data.metadata,
        occurred_at=data.occurred_at or now,
        received_at=now,
        source=data.source,
    )


# --- 3 to 7. scope, limits, amounts, self-referral, rows -----------------------------------------


def conversion_rows(
    *,
    event: Event,
    affiliate,
    referral,
    rules: Iterable[CommissionRule],
    method: str,
    ip_seen: Callable[[], bool],
    actor: Actor,
    now: datetime,
    detail: dict | None = None,
) -> tuple[list[Commission], list[models.Model]]:
    """The unsaved commissions of an attributed event of an active affiliate, and the other rows
    written with them (the fraud flag of a self-referral, the audit row); nothing when no rule pays.

    `rules` are the active rules of the event's name, program-wide or the affiliate's own, in
    primary-key order (a queryset, or the SQL read's rules as instances); `ip_seen` answers whether
    the affiliate signs in to the portal from the event's or the click's address; `detail` is the
    attribution's receipt when a promotion code took part (which candidate won, and why).
    """
    scope, scoped = choose_scope(rules, affiliate_id=affiliate.pk, group_id=affiliate.group_id)
    computed, skipped = evaluate_rules(
        scope=scope,
        rules=scoped,
        event=event,
        referral_created_at=referral.created_at,
        history=ReferralHistory(event=event, affiliate_id=affiliate.pk, referral_id=referral.pk),
    )
    if not computed:
        return [], []
    suspicion = self_referral(event, affiliate, ip_seen)
    hold_until = event.occurred_at + timedelta(days=event.program.hold_days)
    status, reason = Commission.Status.PENDING, ""
    if suspicion:
        status, reason = Commission.Status.REJECTED, suspicion[1]
    commissions = [
        unsaved(
            Commission,
            public_id=new_public_id("com"),
            program=event.program,
            livemode=event.livemode,
            affiliate=affiliate,
            event=event,
            rule=item.rule,
            amount_cents=item.amount_cents,
            currency=event.currency,
            status=status,
            status_reason=reason,
            hold_until=hold_until,
            inputs={
                **item.inputs,
                "attribution": method,
                **({"attribution_detail": detail} if detail else {}),
                "event": event.name,
                "order_id": event.order_id,
                "skipped": skipped,
            },
            created_at=now,
        )
        for item in computed
    ]
    extra: list[models.Model] = []
    if suspicion:
        extra.append(
            fraud_flag(
                event=event, affiliate=affiliate, suspicion=suspicion, commissions=commissions, now=now
            )
        )
    extra.append(commissions_audit(event=event, commissions=commissions, actor=actor))
    return commissions, extra


def self_referral(event: Event, affiliate, ip_seen: Callable[[], bool]) -> tuple[str, str] | None:
    """Step 6: (fraud reason, explanation) when the customer looks like the affiliate, else None.

    ip_seen is asked only when the email did not already decide.
    """
    if event.customer_email_hash and event.customer_email_hash == affiliate.email_hash:
        return (
            FraudFlag.Reason.SELF_REFERRAL_EMAIL,
            "self-referral: the customer's email is the affiliate's own",
        )
    if ip_seen():
        return (
            FraudFlag.Reason.SELF_REFERRAL_IP,
            "self-referral: the visit came from an address the affiliate signs in from",
        )
    return None


def fraud_flag(
    *, event: Event, affiliate, suspicion: tuple[str, str], commissions, now: datetime
) -> FraudFlag:
    return unsaved(
        FraudFlag,
        program=event.program,
        affiliate=affiliate,
        event=event,
        reason=suspicion[0],
        details={"commissions": [c.public_id for c in commissions], "order_id": event.order_id},
        created_at=now,
    )


def commissions_audit(*, event: Event, commissions: list[Commission], actor: Actor) -> AuditLog:
    entry = audit_entry(
        actor=actor,
        action="commission.created",
        obj=event,
        data={
            "commissions": [c.public_id for c in commissions],
            "amounts": [c.amount_cents for c in commissions],
        },
    )
    # Not stored: the rows themselves, for a listener of the announcement (webhooks' outbox) that
    # would otherwise read back what this conversion has just written, a joined query per commission
    # (the event's answer is set on it before the conversion is written).
    entry.subjects = {event.public_id: event, **{c.public_id: c for c in commissions}}
    return entry


# --- 8. the answer -------------------------------------------------------------------------------


def commission_json(commission: Commission) -> dict[str, Any]:
    return {
        "id": commission.public_id,
        "amount_cents": commission.amount_cents,
        "currency": commission.currency,
        "status": commission.status,
        "hold_until": iso(commission.hold_until),
    }


def response_body(*, event: Event, affiliate, referral, commissions: list[Commission]) -> dict[str, Any]:
    """What POST /api/v1/events answers, stored on the event so that a replay answers it again."""
    return {
        "id": event.public_id,
        "livemode": event.livemode,
        "attributed": affiliate is not None,
        "affiliate": {"id": affiliate.public_id, "code": affiliate.code} if affiliate else None,
        "referral": referral.public_id if referral else None,
        "commissions": [commission_json(c) for c in commissions],
    }
