"""Money-moving writes: ingesting conversions, reversing them on refunds, approving after the hold.

Every function here is one transaction, safe to call twice, and writes an audit row naming its actor.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from affiliates.models import PortalSession, Program
from refapp.models import Actor, AuditLog, audit_announce, audit_log
from refapp.money import round_half_up
from tracking.attribution import attribute, referral_for
from tracking.models import Event

from . import ingest_pg
from .calculation import active_rules
from .friends import friend_reward_rows
from .models import Commission, FraudFlag, Refund
from .pipeline import EventInput, commission_json, conversion_rows, event_from_input, iso, response_body

# The names the events and refunds API and the fast path import from here.
__all__ = ["EventInput", "RefundError", "event_ingest", "iso", "refund_apply"]


def event_ingest(
    *, program: Program, livemode: bool, data: EventInput, actor: Actor, now: datetime
) -> tuple[dict[str, Any], bool]:
    """Store a conversion, attribute it and create its commissions: all or nothing.

    Returns (response body, created). A replay of a known order_id returns the body answered the
    first time and created=False. Concurrent deliveries of one order race on the unique
    (program, livemode, order_id) index: the loser's INSERT waits for the winner's commit, fails,
    and then reads the winner's stored body, so exactly one event and one set of commissions exist.
    The steps of the decision are told in `commissions.pipeline`.
    """
    # No "seen it?" read first: the unique index decides, and a replay costs one refused INSERT.
    # A promotion code is weighed against the click by the ORM path's attribution (the SQL read does
    # not know promotion codes): such conversions are few, and take the ORM writer.
    if ingest_pg.available() and not data.coupon_code:
        body = ingest_pg.event_ingest_pg(program=program, livemode=livemode, data=data, actor=actor, now=now)
        if body is not None:
            return body, True
        # Refused by a unique index: a known order answers its stored body; otherwise a racing first
        # event of the same customer created the referral, which the ORM path below reuses. A
        # customer referrer's event (commissions.friends) also comes down to the ORM path.
        stored = _stored_response(program, livemode, data.order_id) if data.order_id else None
        if stored is not None:
            return stored, False
    try:
        with transaction.atomic():
            return _event_ingest(program=program, livemode=livemode, data=data, actor=actor, now=now), True
    except IntegrityError:
        if data.order_id:
            stored = _stored_response(program, livemode, data.order_id)
            if stored is not None:
                return stored, False
        raise


def _stored_response(program: Program, livemode: bool, order_id: str) -> dict[str, Any] | None:
    row = (
        Event.objects.filter(program=program, livemode=livemode, order_id=order_id)
        .values_list("response", flat=True)
        .first()
    )
    return row


def _event_ingest(
    *, program: Program, livemode: bool, data: EventInput, actor: Actor, now: datetime
) -> dict[str, Any]:
    """The ORM writer of the pipeline (`commissions.pipeline`), on any database."""
    event = event_from_input(program=program, livemode=livemode, data=data, now=now)
    occurred_at = event.occurred_at
    # The INSERT comes first so that a concurrent duplicate blocks here, before any other write.
    event.save(force_insert=True)

    # 1. attribute
    found = attribute(
        program=program,
        livemode=livemode,
        customer_id=data.customer_id,
        referral_code=data.referral_code,
        visitor_id=data.visitor_id,
        occurred_at=occurred_at,
        received_at=now,
        coupon_code=data.coupon_code,
    )
    commissions: list[Commission] = []
    extra: list[Any] = []
    referral = None
    affiliate = None
    if found.attributed:
        # 2. referral
        referral = referral_for(
            program=program,
            livemode=livemode,
            attribution=found,
            customer_id=data.customer_id,
            visitor_id=data.visitor_id,
            now=occurred_at,
        )
        affiliate = referral.affiliate  # a concurrent first event may have tied the customer already
        event.affiliate = affiliate
        event.referral = referral
        event.click = found.click
        event.attribution = found.method
        click = found.click
        if affiliate.is_active and affiliate.is_customer:
            # A customer referrer: the program's friend reward instead of its rules (commissions.friends).
            commissions, extra = friend_reward_rows(
                event=event,
                affiliate=affiliate,
                referral=referral,
                method=found.method,
                ip_seen=lambda: _portal_ip_seen(event, affiliate, click),
                actor=actor,
                now=now,
            )
            for row in commissions:
                row.save(force_insert=True)
            for row in extra:
                row.save()
        elif affiliate.is_active:
            # 3 to 7: scope, limits, amounts, self-referral, rows
            commissions, extra = conversion_rows(
                event=event,
                affiliate=affiliate,
                referral=referral,
                rules=active_rules(
                    program=program, livemode=livemode, affiliate=affiliate, event_name=event.name
                ),
                method=found.method,
                detail=found.detail,
                ip_seen=lambda: _portal_ip_seen(event, affiliate, click),
                actor=actor,
                now=now,
            )
            for row in commissions:
                row.save(force_insert=True)
            for row in extra:
                row.save()

    # 8. answer
    body = response_body(event=event, affiliate=affiliate, referral=referral, commissions=commissions)
    event.response = body
    event.save(update_fields=["affiliate", "referral", "click", "attribution", "response"])
    # Listeners (webhooks) read the event with its answer: told last, still inside the transaction.
    audit_announce(row for row in extra if isinstance(row, AuditLog))
    return body


def _portal_ip_seen(event: Event, affiliate, click) -> bool:
    ip_hashes = {h for h in (event.ip_hash, click.ip_hash if click else "") if h}
    return (
        bool(ip_hashes) and PortalSession.objects.filter(affiliate=affiliate, ip_hash__in=ip_hashes).exists()
    )


# --- refunds ---------------------------------------------------------------------------------


class RefundError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def refund_apply(
    *,
    program: Program,
    livemode: bool,
    order_id: str,
    refund_id: str | None,
    amount_cents: int | None,
    actor: Actor,
    now: datetime,
    reason: str = "the order was refunded",
) -> tuple[dict[str, Any], bool]:
    """Refund all or part of an order and reverse its commissions in proportion.

    Pending and approved commissions of a fully refunded order become rejected; a partial refund
    adds a negative reversal row beside each; a paid commission gets a negative approved clawback
    that the next payout nets off. Never reverses more than was earned. A replayed refund_id of the
    same order, or a full refund of an order already fully refunded, changes nothing and returns the
    stored body. Refund ids are unique per order, not per program: merchants number refunds per
    order ("1", "2", "R1" on every order), so the same id on another order is a new refund of it.
    """
    if refund_id:
        stored = _stored_refund(program, livemode, order_id, refund_id)
        if stored is not None:
            return stored, False
    try:
        with transaction.atomic():
            return _refund_apply(
                program=program,
                livemode=livemode,
                order_id=order_id,
                refund_id=refund_id,
                amount_cents=amount_cents,
                actor=actor,
                now=now,
                reason=reason,
            )
    except IntegrityError:
        if refund_id:  # the same refund raced in concurrently and committed first
            stored = _stored_refund(program, livemode, order_id, refund_id)
            if stored is not None:
                return stored, False
        raise


def _stored_refund(program: Program, livemode: bool, order_id: str, refund_id: str) -> dict[str, Any] | None:
    """The answer stored for this refund id of this order, if it was applied before."""
    return (
        Refund.objects.filter(
            program=program, livemode=livemode, event__order_id=order_id, refund_id=refund_id
        )
        .values_list("response", flat=True)
        .first()
    )


def _refund_apply(
    *, program, livemode, order_id, refund_id, amount_cents, actor, now, reason
) -> tuple[dict[str, Any], bool]:
    # Lock the order: refunds of one order are serialised, so the running total cannot be raced.
    event = (
        Event.objects.select_for_update()
        .filter(program=program, livemode=livemode, order_id=order_id)
        .first()
    )
    if event is None:
        if Event.objects.filter(program=program, livemode=not livemode, order_id=order_id).exists():
            mode = "test" if livemode else "live"
            raise RefundError(
                403, "wrong_mode", f"Order {order_id!r} was recorded in {mode} mode; use a key of that mode."
            )
        raise RefundError(404, "not_found", f"No order {order_id!r} in this program.")
    if refund_id:
        stored = event.refunds.filter(refund_id=refund_id).values_list("response", flat=True).first()
        if stored is not None:
            return stored, False
    remaining = event.amount_cents - event.refunded_cents
    fully_refunded = (remaining == 0 and event.amount_cents > 0) or (
        event.amount_cents == 0 and event.refunds.exists()
    )
    if amount_cents is None:
        if fully_refunded:
            last = event.refunds.order_by("-pk").first()
            return (last.response if last else {}), False
        amount_cents = remaining
    else:
        if amount_cents <= 0:
            raise RefundError(400, "invalid_request", "amount_cents must be positive.", "amount_cents")
        if amount_cents > remaining:
            raise RefundError(
                400,
                "invalid_request",
                f"Only {remaining} of this order's {event.amount_cents} remain refundable.",
                "amount_cents",
            )

    event.refunded_cents += amount_cents
    event.save(update_fields=["refunded_cents"])
    full = event.refunded_cents >= event.amount_cents
    changed = _reverse_commissions(event=event, full=full, reason=reason, actor=actor, now=now)
    body = {
        "order_id": order_id,
        "refund_id": refund_id,
        "event": event.public_id,
        "amount_cents": amount_cents,
        "refunded_cents": event.refunded_cents,
        "fully_refunded": full,
        "commissions": changed,
    }
    Refund.objects.create(
        program=program,
        livemode=livemode,
        event=event,
        refund_id=refund_id,
        amount_cents=amount_cents,
        response=body,
        created_at=now,
    )
    audit_log(
        actor=actor,
        action="order.refunded",
        obj=event,
        data={"refund_id": refund_id, "amount_cents": amount_cents},
    )
    return body, True


def _reverse_commissions(
    *, event: Event, full: bool, reason: str, actor: Actor, now: datetime
) -> list[dict[str, Any]]:
    changed: list[dict[str, Any]] = []
    originals = list(
        Commission.objects.select_for_update()
        .filter(event=event, kind=Commission.Kind.COMMISSION)
        .order_by("pk")
    )
    for original in originals:
        if original.status == Commission.Status.REJECTED:
            continue
        reversals = list(
            original.reversals.select_for_update().exclude(status=Commission.Status.REJECTED).order_by("pk")
        )
        if full and original.status in (Commission.Status.PENDING, Commission.Status.APPROVED):
            unpaid = [r for r in reversals if r.status != Commission.Status.PAID]
            if len(unpaid) == len(reversals):
                # Nothing of it was paid: rejecting the commission and its partial reversals nets zero.
                for row in [original, *unpaid]:
                    _set_status(row, Commission.Status.REJECTED, reason, actor, now)
                    changed.append({**commission_json(row), "kind": row.kind})
                continue
        already = -sum(r.amount_cents for r in reversals)
        if full or event.amount_cents == 0:
            target = original.amount_cents
        else:
            target = round_half_up(Decimal(original.amount_cents) * event.refunded_cents / event.amount_cents)
        delta = min(target, original.amount_cents) - already
        if delta <= 0:
            continue
        if original.status in (Commission.Status.PAID, Commission.Status.PROCESSING):
            # Money has left or is leaving: an approved negative row that the next payout nets off.
            status, hold_until = Commission.Status.APPROVED, now
        else:
            status, hold_until = original.status, original.hold_until
        reversal = Commission(
            program=original.program,
            livemode=original.livemode,
            affiliate=original.affiliate,
            event=event,
            rule=original.rule,
            kind=Commission.Kind.REVERSAL,
            reverses=original,
            amount_cents=-delta,
            currency=original.currency,
            status=status,
            hold_until=hold_until,
            approved_at=now if status == Commission.Status.APPROVED else None,
            inputs={
                "reverses": original.public_id,
                "reason": reason,
                "refunded_cents": event.refunded_cents,
                "order_amount_cents": event.amount_cents,
                "target_reversed_cents": target,
                "already_reversed_cents": already,
            },
            created_at=now,
        )
        reversal.save(force_insert=True)
        audit_log(
            actor=actor,
            action="commission.reversed",
            obj=reversal,
            data={"reverses": original.public_id, "amount_cents": -delta},
        )
        changed.append({**commission_json(reversal), "kind": reversal.kind, "reverses": original.public_id})
    return changed


def _set_status(commission: Commission, status: str, reason: str, actor: Actor | None, now: datetime) -> None:
    previous = commission.status
    commission.status = status
    commission.status_reason = reason[:500]
    if status == Commission.Status.APPROVED:
        commission.approved_at = now
    commission.save(update_fields=["status", "status_reason", "approved_at"])
    audit_log(
        actor=actor, action=f"commission.{status}", obj=commission, data={"from": previous, "reason": reason}
    )


# --- approval and manual review ---------------------------------------------------------------


def approve_due_commissions(*, now: datetime, batch_size: int = 1000) -> int:
    """Approve every pending commission whose hold has passed. Idempotent; safe beside a twin run.

    Works in batches, each its own transaction; on PostgreSQL rows another run has locked are
    skipped (SKIP LOCKED), and the compare-and-set on status means a row is approved exactly once.
    """
    approved = 0
    skip_locked = connection.features.has_select_for_update_skip_locked
    while True:
        with transaction.atomic():
            # An order under dispute stays on hold until the dispute closes.
            due = Commission.objects.filter(
                status=Commission.Status.PENDING, hold_until__lte=now, event__disputed=False
            ).order_by("pk")
            if skip_locked:
                due = due.select_for_update(skip_locked=True, of=("self",))
            ids = list(due.values_list("pk", flat=True)[:batch_size])
            if not ids:
                return approved
            count = Commission.objects.filter(pk__in=ids, status=Commission.Status.PENDING).update(
                status=Commission.Status.APPROVED, approved_at=now
            )
            rows = Commission.objects.filter(pk__in=ids).values_list("public_id", "program_id")
            audit_announce(
                AuditLog.objects.bulk_create(
                    [
                        AuditLog(
                            actor_label="system",
                            action="commission.approved",
                            program_id=program_id,
                            object_type="commissions.commission",
                            object_id=public_id,
                            data={"reason": "hold period ended"},
                        )
                        for public_id, program_id in rows
                    ]
                )
            )
            approved += count
        if len(ids) < batch_size:
            return approved


class InvalidCommissionAction(Exception):
    pass


def commission_set_status(
    *, commission: Commission, status: str, reason: str, actor: Actor, now: datetime
) -> Commission:
    """An admin approves or rejects an unpaid commission by hand, with a reason.

    A reversal (the negative row of a refund, or the clawback of a paid commission) is never
    rejected by hand: rejecting it would cancel the clawback and pay the affiliate for a refunded
    order. It can be approved early; it goes away only with its order (a full refund of an unpaid
    commission rejects both together)."""
    if status not in (Commission.Status.APPROVED, Commission.Status.REJECTED):
        raise InvalidCommissionAction("Only approve or reject by hand.")
    with transaction.atomic():
        locked = Commission.objects.select_for_update().get(pk=commission.pk)
        if locked.status == status:
            return locked
        if locked.status == Commission.Status.PAID:
            raise InvalidCommissionAction(
                "A paid commission cannot change; refund the order to claw it back."
            )
        if locked.kind == Commission.Kind.REVERSAL and status == Commission.Status.REJECTED:
            raise InvalidCommissionAction(
                "A reversal cannot be rejected: that would cancel the clawback of a refunded order."
            )
        _set_status(locked, status, reason, actor, now)
    return locked


def fraud_flag_resolve(*, flag: FraudFlag, release: bool, actor: Actor, now: datetime) -> FraudFlag:
    """Dismiss a flag (the rejected commissions return to pending) or confirm it (they stay rejected)."""
    with transaction.atomic():
        locked = FraudFlag.objects.select_for_update().get(pk=flag.pk)
        if locked.status != FraudFlag.Status.OPEN:
            return locked
        locked.status = FraudFlag.Status.DISMISSED if release else FraudFlag.Status.CONFIRMED
        locked.resolved_at = now
        locked.resolved_by = actor.label
        locked.save(update_fields=["status", "resolved_at", "resolved_by"])
        if release:
            for commission in (
                Commission.objects.select_for_update()
                .filter(
                    public_id__in=locked.details.get("commissions", []), status=Commission.Status.REJECTED
                )
                .order_by("pk")
            ):
                _set_status(commission, Commission.Status.PENDING, "fraud flag dismissed", actor, now)
        audit_log(
            actor=actor,
            action=f"fraud_flag.{locked.status}",
            obj=locked.event or locked.affiliate,
            data={"flag": locked.pk},
        )
    return locked


def order_dispute_set(
    *, event: Event, disputed: bool, dispute_id: str, status: str, actor: Actor, now: datetime
) -> bool:
    """Hold an order's commissions while its payment is disputed, or release them when the dispute
    closes. Locks the order and re-checks, so a redelivered dispute changes and logs nothing.
    Returns whether the flag changed."""
    with transaction.atomic():
        locked = Event.objects.select_for_update().get(pk=event.pk)
        if locked.disputed == disputed:
            return False
        locked.disputed = disputed
        locked.save(update_fields=["disputed"])
        data = {"dispute": dispute_id, "at": now.isoformat()}
        if not disputed:
            data["status"] = status
        audit_log(
            actor=actor,
            action="order.disputed" if disputed else "order.dispute_closed",
            obj=locked,
            data=data,
        )
    return True


def balances(*, affiliate_id: int, livemode: bool = True) -> dict[str, int]:
    """Pending, approved and paid totals, always derived from the rows."""
    rows = (
        Commission.objects.filter(affiliate_id=affiliate_id, livemode=livemode)
        .exclude(status=Commission.Status.REJECTED)
        .values("status")
        .annotate(total=Sum("amount_cents"))
    )
    result = {"pending": 0, "approved": 0, "paid": 0}
    for row in rows:
        result[row["status"]] = row["total"] or 0
    return result
