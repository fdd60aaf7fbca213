"""Stripe sales, refunds and disputes (DESIGN.md 4.6), beside the events and refunds API.

`payouts.views.webhooks` verifies, deduplicates and routes `POST /webhooks/stripe`; the handlers of
`HANDLERS` here record what Stripe says about a merchant's sales through the same services as the
API (`event_ingest`, `refund_apply`). Each returns a short result for the log and runs inside the
view's transaction. `account.updated` is about paying affiliates and stays in `payouts`.

Which program an event belongs to: the `?program=<slug>` query parameter of the endpoint URL when
set; otherwise the program of the visitor's click (checkout) or of the referred customer
(invoices), or of the order (refunds, disputes); otherwise the only program, if there is one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q

from affiliates.models import Program
from refapp.models import Actor, audit_log
from refapp.money import is_currency, round_half_up
from tracking.attribution import attribute, referral_for
from tracking.models import Click, Event, Referral
from tracking.services import VISITOR_RE

from .services import EventInput, RefundError, event_ingest, refund_apply

ACTOR = Actor("stripe")


def _program(
    slug: str | None, *, visitor_id: str = "", customer_id: str = "", livemode: bool = True
) -> Program | None:
    if slug:
        return Program.objects.filter(slug=slug).first()
    if visitor_id:
        click = (
            Click.objects.filter(visitor_id=visitor_id)
            .select_related("program")
            .order_by("-created_at")
            .first()
        )
        if click:
            return click.program
    if customer_id:
        referral = (
            Referral.objects.filter(customer_id=customer_id, livemode=livemode)
            .select_related("program")
            .first()
        )
        if referral:
            return referral.program
    programs = list(Program.objects.all()[:2])
    return programs[0] if len(programs) == 1 else None


def _when(obj: dict[str, Any], fallback: datetime) -> datetime:
    created = obj.get("created")
    return datetime.fromtimestamp(created, tz=UTC) if isinstance(created, int) else fallback


def _first_payment_intent(invoice: dict[str, Any]) -> str:
    if invoice.get("payment_intent"):
        return str(invoice["payment_intent"])
    for payment in (invoice.get("payments") or {}).get("data", []):
        intent = (payment.get("payment") or {}).get("payment_intent")
        if intent:
            return str(intent)
    return ""


def _record_sale(
    program: Program,
    livemode: bool,
    *,
    order_id: str,
    customer_id: str,
    visitor_id: str,
    amount: int,
    currency: str,
    metadata: dict,
    occurred_at: datetime,
    now: datetime,
) -> str:
    if amount <= 0:
        return "ignored: nothing was paid"
    if not is_currency(currency) or currency.upper() != program.currency:
        return f"ignored: currency {currency} is not the program's {program.currency}"
    body, created = event_ingest(
        program=program,
        livemode=livemode,
        data=EventInput(
            name="sale",
            order_id=order_id,
            customer_id=customer_id,
            visitor_id=visitor_id,
            amount_cents=amount,
            currency=currency.upper(),
            metadata={k: v for k, v in metadata.items() if v},
            occurred_at=min(occurred_at, now),
            source="stripe",
        ),
        actor=ACTOR,
        now=now,
    )
    verb = "recorded" if created else "already recorded"
    return f"{verb} {body['id']} attributed={body['attributed']} commissions={len(body['commissions'])}"


def checkout_session_completed(session: dict, *, livemode: bool, slug: str | None, now: datetime) -> str:
    visitor_id = session.get("client_reference_id") or ""
    if not VISITOR_RE.match(visitor_id):
        return "ignored: no refapp visitor id in client_reference_id"
    customer_id = session.get("customer") or ""
    program = _program(slug, visitor_id=visitor_id, livemode=livemode)
    if program is None:
        return "ignored: no program for this visitor"
    # Tie the customer to the affiliate first, so that later invoices of a subscription pay them.
    if customer_id:
        found = attribute(
            program=program,
            livemode=livemode,
            customer_id=customer_id,
            referral_code="",
            visitor_id=visitor_id,
            occurred_at=now,
            received_at=now,
        )
        if found.attributed:
            referral_for(
                program=program,
                livemode=livemode,
                attribution=found,
                customer_id=customer_id,
                visitor_id=visitor_id,
                now=now,
            )
    # The sale itself. For subscriptions the order id is the first invoice, the same id invoice.paid
    # uses, so whichever of the two events arrives first records it and the other replays.
    order_id = (
        session.get("invoice") if session.get("mode") == "subscription" else session.get("payment_intent")
    )
    return _record_sale(
        program,
        livemode,
        order_id=str(order_id or session.get("id")),
        customer_id=customer_id,
        visitor_id=visitor_id,
        amount=int(session.get("amount_total") or 0),
        currency=str(session.get("currency") or ""),
        metadata={
            "stripe_checkout_session": session.get("id"),
            "stripe_payment_intent": session.get("payment_intent"),
            "stripe_invoice": session.get("invoice"),
        },
        occurred_at=_when(session, now),
        now=now,
    )


def invoice_paid(invoice: dict, *, livemode: bool, slug: str | None, now: datetime) -> str:
    customer_id = invoice.get("customer") or ""
    if not customer_id:
        return "ignored: invoice without customer"
    program = _program(slug, customer_id=customer_id, livemode=livemode)
    if (
        program is None
        or not Referral.objects.filter(program=program, livemode=livemode, customer_id=customer_id).exists()
    ):
        return "ignored: customer was not referred"
    return _record_sale(
        program,
        livemode,
        order_id=str(invoice["id"]),
        customer_id=customer_id,
        visitor_id="",
        amount=int(invoice.get("amount_paid") or 0),
        currency=str(invoice.get("currency") or ""),
        metadata={
            "stripe_invoice": invoice.get("id"),
            "stripe_charge": invoice.get("charge"),
            "stripe_payment_intent": _first_payment_intent(invoice),
            "billing_reason": invoice.get("billing_reason"),
        },
        occurred_at=_when(invoice, now),
        now=now,
    )


def _order_for(
    livemode: bool, slug: str | None, *, charge_id: str = "", payment_intent: str = "", invoice_id: str = ""
) -> Event | None:
    match = Q()
    if charge_id:
        match |= Q(metadata__stripe_charge=charge_id)
    if payment_intent:
        match |= Q(order_id=payment_intent) | Q(metadata__stripe_payment_intent=payment_intent)
    if invoice_id:
        match |= Q(order_id=invoice_id)
    if not match:
        return None
    events = Event.objects.filter(match, livemode=livemode, source="stripe").select_related("program")
    if slug:
        events = events.filter(program__slug=slug)
    return events.order_by("pk").first()


def charge_refunded(charge: dict, *, livemode: bool, slug: str | None, now: datetime) -> str:
    event = _order_for(
        livemode,
        slug,
        charge_id=charge.get("id") or "",
        payment_intent=charge.get("payment_intent") or "",
        invoice_id=charge.get("invoice") or "",
    )
    if event is None:
        return "ignored: no recorded order for this charge"
    charged = int(charge.get("amount") or 0)
    refunded = int(charge.get("amount_refunded") or 0)
    if charged <= 0 or refunded <= 0:
        return "ignored: nothing refunded"
    # Stripe reports the cumulative refunded amount; refapp's order amount may differ from the
    # charge (taxes, currency), so the refunded fraction is carried over, rounded half up once.
    if refunded >= charged:
        target = event.amount_cents
    else:
        target = round_half_up(Decimal(event.amount_cents) * refunded / charged)
    return _refund_to(
        event,
        target,
        refund_id=f"stripe:{charge.get('id')}:{refunded}",
        reason="the payment was refunded in Stripe",
        now=now,
    )


def _refund_to(event: Event, target_refunded: int, *, refund_id: str, reason: str, now: datetime) -> str:
    """Bring the order's refunded total up to target_refunded.

    The delta is computed under the order's row lock, from what is refunded at that moment: an API
    refund of the same order (`POST /api/v1/refunds`) that committed after `_order_for` read the
    order counts, so the delta never exceeds what remains and is never refused for it. Computed
    from the unlocked read, a concurrent API refund made it too large: the webhook answered
    "refund refused" with 200 and Stripe's refund was never applied.
    """
    with transaction.atomic():
        locked = Event.objects.select_for_update().select_related("program").get(pk=event.pk)
        delta = min(target_refunded, locked.amount_cents) - locked.refunded_cents
        if delta <= 0:
            return "already refunded"
        try:
            body, _ = refund_apply(
                program=locked.program,
                livemode=locked.livemode,
                order_id=locked.order_id or "",
                refund_id=refund_id,
                amount_cents=delta,
                actor=ACTOR,
                now=now,
                reason=reason,
            )
        except RefundError as exc:
            return f"refund refused: {exc.message}"
    return f"refunded {delta} of {locked.public_id}; {len(body['commissions'])} commission row(s) changed"


def dispute_created(dispute: dict, *, livemode: bool, slug: str | None, now: datetime) -> str:
    event = _order_for(
        livemode,
        slug,
        charge_id=dispute.get("charge") or "",
        payment_intent=dispute.get("payment_intent") or "",
    )
    if event is None:
        return "ignored: no recorded order for this charge"
    if Event.objects.filter(pk=event.pk, disputed=False).update(disputed=True):
        audit_log(actor=ACTOR, action="order.disputed", obj=event, data={"dispute": dispute.get("id")})
    return f"holding the commissions of {event.public_id}"


def dispute_closed(dispute: dict, *, livemode: bool, slug: str | None, now: datetime) -> str:
    event = _order_for(
        livemode,
        slug,
        charge_id=dispute.get("charge") or "",
        payment_intent=dispute.get("payment_intent") or "",
    )
    if event is None:
        return "ignored: no recorded order for this charge"
    status = dispute.get("status")
    Event.objects.filter(pk=event.pk).update(disputed=False)
    audit_log(
        actor=ACTOR,
        action="order.dispute_closed",
        obj=event,
        data={"dispute": dispute.get("id"), "status": status},
    )
    if status == "lost":
        return _refund_to(
            event,
            event.amount_cents,
            refund_id=f"dispute:{dispute.get('id')}",
            reason="the payment dispute was lost",
            now=now,
        )
    return f"released the commissions of {event.public_id} (dispute {status})"


HANDLERS = {
    "checkout.session.completed": checkout_session_completed,
    "invoice.paid": invoice_paid,
    "charge.refunded": charge_refunded,
    "charge.dispute.created": dispute_created,
    "charge.dispute.closed": dispute_closed,
}
