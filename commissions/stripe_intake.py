"""Stripe sales, refunds and disputes (docs/architecture.md), beside the events and refunds API.

`payouts.views.webhooks` verifies, deduplicates and routes `POST /webhooks/stripe`; the handlers of
`HANDLERS` here record what Stripe says about a merchant's sales through the same services as the
API (`event_ingest`, `refund_apply`). Each returns a short result for the log and runs inside the
view's transaction. `account.updated` is about paying affiliates and stays in `payouts`.

Which program an event belongs to: the `?program=<slug>` query parameter of the endpoint URL when
set; otherwise the program of the promotion code used (checkout, invoices), of the visitor's click
(checkout) or of the referred customer (invoices), or of the order (refunds, disputes); otherwise the
only program, if there is one.

A checkout session or an invoice whose discount carries one of a program's promotion codes
(`discounts[].promotion_code`, the id of the promotion code refapp provisioned, or the expanded
object with its `code`) is attributed to that code's affiliate, even without a click, and binds the
customer like any other referral. Stripe sends an invoice's `discounts` as ids unless the endpoint
expands them; only expanded discounts are read there (a renewal pays through the customer binding).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q

from affiliates.models import Program, PromotionCode
from affiliates.rewards import affiliate_by_promotion_code
from refapp.models import Actor
from refapp.money import MAX_AMOUNT_MINOR, is_currency, round_half_up
from tracking.attribution import attribute, referral_for
from tracking.models import Click, Event, Referral
from tracking.services import VISITOR_RE

from .services import EventInput, RefundError, event_ingest, order_dispute_set, refund_apply

ACTOR = Actor("stripe")
# Stripe's `created` times: anything outside these years is not a real event time.
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC).timestamp(), datetime(2100, 1, 1, tzinfo=UTC).timestamp()


class StripePayloadError(ValueError):
    """A correctly signed event whose object is not shaped as Stripe sends it (answered 400)."""


def text_of(obj: dict[str, Any], key: str) -> str:
    """A string field ("" when absent). Ids and codes are strings in every Stripe object; a NUL or an
    unpaired surrogate would be refused by the database, so it is refused here first."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or "\x00" in value or len(value) > 255:
        raise StripePayloadError(f"{key} is not a Stripe id or code.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise StripePayloadError(f"{key} is not valid text.") from exc
    return value


def amount_of(obj: dict[str, Any], key: str) -> int:
    """An amount in minor units (0 when absent)."""
    value = obj.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT_MINOR:
        raise StripePayloadError(f"{key} is not an amount in minor units.")
    return value


def object_of(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StripePayloadError(f"{key} is not an object.")
    return value


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


def _promotion_code(obj: dict[str, Any], slug: str | None, livemode: bool) -> PromotionCode | None:
    """The refapp promotion code in the object's discounts, if any (the first one that is ours)."""
    discounts = obj.get("discounts")
    if discounts is None:
        return None
    if not isinstance(discounts, list):
        raise StripePayloadError("discounts is not a list.")
    rows = PromotionCode.objects.select_related("program").filter(livemode=livemode)
    if slug:
        rows = rows.filter(program__slug=slug)
    for discount in discounts:
        if isinstance(discount, str):
            continue  # an unexpanded invoice discount id: nothing to read without asking Stripe
        if not isinstance(discount, dict):
            raise StripePayloadError("discounts holds something other than discounts.")
        promo = discount.get("promotion_code")
        if isinstance(promo, str) and promo:
            found = rows.filter(stripe_id=text_of(discount, "promotion_code")).first()
        elif isinstance(promo, dict):
            found = rows.filter(stripe_id=text_of(promo, "id")).first() if promo.get("id") else None
            code = text_of(promo, "code")
            if found is None and code:
                found = _row_for_code(code, slug=slug, livemode=livemode)
        elif promo is None:
            continue
        else:
            raise StripePayloadError("promotion_code is not an id or a promotion code.")
        if found is not None:
            return found
    return None


def _row_for_code(code: str, *, slug: str | None, livemode: bool) -> PromotionCode | None:
    """A promotion code the merchant made in Stripe with an affiliate's code: the unsaved row of
    that affiliate's promotion code (its default when they have none)."""
    programs = Program.objects.filter(slug=slug) if slug else Program.objects.all()[:2]
    programs = list(programs)
    if len(programs) != 1:
        return None
    affiliate = affiliate_by_promotion_code(program=programs[0], livemode=livemode, code=code)
    if affiliate is None:
        return None
    return PromotionCode(program=programs[0], affiliate=affiliate, livemode=livemode, code=code)


def _when(obj: dict[str, Any], fallback: datetime) -> datetime:
    created = obj.get("created")
    if isinstance(created, int) and not isinstance(created, bool) and EARLIEST <= created < LATEST:
        return datetime.fromtimestamp(created, tz=UTC)
    return fallback


def _first_payment_intent(invoice: dict[str, Any]) -> str:
    if intent := text_of(invoice, "payment_intent"):
        return intent
    payments = object_of(invoice, "payments").get("data") or []
    if not isinstance(payments, list):
        raise StripePayloadError("payments.data is not a list.")
    for payment in payments:
        if not isinstance(payment, dict):
            raise StripePayloadError("payments.data holds something other than payments.")
        if intent := text_of(object_of(payment, "payment"), "payment_intent"):
            return intent
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
    coupon_code: str = "",
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
            coupon_code=coupon_code,
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
    visitor_id = text_of(session, "client_reference_id")
    if not VISITOR_RE.match(visitor_id):
        visitor_id = ""
    promo = _promotion_code(session, slug, livemode)
    if not visitor_id and promo is None:
        return "ignored: no refapp visitor id in client_reference_id and no refapp promotion code"
    customer_id = text_of(session, "customer")
    if promo is not None and not slug:
        program = promo.program
    else:
        program = _program(slug, visitor_id=visitor_id, livemode=livemode)
    if program is None:
        return "ignored: no program for this visitor"
    coupon_code = promo.code if promo is not None and promo.program_id == program.pk else ""
    # The sale itself. For subscriptions the order id is the first invoice, the same id invoice.paid
    # uses, so whichever of the two events arrives first records it and the other replays.
    invoice_id, payment_intent = text_of(session, "invoice"), text_of(session, "payment_intent")
    order_id = invoice_id if text_of(session, "mode") == "subscription" else payment_intent
    result = _record_sale(
        program,
        livemode,
        order_id=order_id or text_of(session, "id"),
        customer_id=customer_id,
        visitor_id=visitor_id,
        amount=amount_of(session, "amount_total"),
        currency=text_of(session, "currency"),
        metadata={
            "stripe_checkout_session": text_of(session, "id"),
            "stripe_payment_intent": payment_intent,
            "stripe_invoice": invoice_id,
            "stripe_promotion_code": promo.stripe_id if promo is not None else "",
            "discount_cents": amount_of(object_of(session, "total_details"), "amount_discount"),
        },
        occurred_at=_when(session, now),
        now=now,
        coupon_code=coupon_code,
    )
    # A sale that was recorded tied the customer already (its event says how it was attributed).
    # One that was not (nothing paid: a trial) still ties them, so that later invoices pay.
    if customer_id:
        found = attribute(
            program=program,
            livemode=livemode,
            customer_id=customer_id,
            referral_code="",
            visitor_id=visitor_id,
            occurred_at=now,
            received_at=now,
            coupon_code=coupon_code,
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
    return result


def invoice_paid(invoice: dict, *, livemode: bool, slug: str | None, now: datetime) -> str:
    if not text_of(invoice, "id"):
        raise StripePayloadError("id is missing.")
    customer_id = text_of(invoice, "customer")
    if not customer_id:
        return "ignored: invoice without customer"
    promo = _promotion_code(invoice, slug, livemode)
    if promo is not None and not slug:
        program = promo.program
    else:
        program = _program(slug, customer_id=customer_id, livemode=livemode)
    coupon_code = (
        promo.code if promo is not None and program is not None and promo.program_id == program.pk else ""
    )
    if program is None or (
        not coupon_code
        and not Referral.objects.filter(program=program, livemode=livemode, customer_id=customer_id).exists()
    ):
        return "ignored: customer was not referred"
    return _record_sale(
        program,
        livemode,
        order_id=text_of(invoice, "id"),
        customer_id=customer_id,
        visitor_id="",
        amount=amount_of(invoice, "amount_paid"),
        currency=text_of(invoice, "currency"),
        metadata={
            "stripe_invoice": text_of(invoice, "id"),
            "stripe_charge": text_of(invoice, "charge"),
            "stripe_payment_intent": _first_payment_intent(invoice),
            "billing_reason": text_of(invoice, "billing_reason"),
            "stripe_promotion_code": promo.stripe_id if promo is not None else "",
        },
        occurred_at=_when(invoice, now),
        now=now,
        coupon_code=coupon_code,
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
        charge_id=text_of(charge, "id"),
        payment_intent=text_of(charge, "payment_intent"),
        invoice_id=text_of(charge, "invoice"),
    )
    if event is None:
        return "ignored: no recorded order for this charge"
    charged = amount_of(charge, "amount")
    refunded = amount_of(charge, "amount_refunded")
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
        refund_id=f"stripe:{text_of(charge, 'id')}:{refunded}",
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


def _disputed_order(dispute: dict, *, livemode: bool, slug: str | None) -> Event | None:
    return _order_for(
        livemode,
        slug,
        charge_id=text_of(dispute, "charge"),
        payment_intent=text_of(dispute, "payment_intent"),
    )


def dispute_created(dispute: dict, *, livemode: bool, slug: str | None, now: datetime) -> str:
    event = _disputed_order(dispute, livemode=livemode, slug=slug)
    if event is None:
        return "ignored: no recorded order for this charge"
    order_dispute_set(
        event=event, disputed=True, dispute_id=text_of(dispute, "id"), status="", actor=ACTOR, now=now
    )
    return f"holding the commissions of {event.public_id}"


def dispute_closed(dispute: dict, *, livemode: bool, slug: str | None, now: datetime) -> str:
    event = _disputed_order(dispute, livemode=livemode, slug=slug)
    if event is None:
        return "ignored: no recorded order for this charge"
    status = text_of(dispute, "status")
    order_dispute_set(
        event=event, disputed=False, dispute_id=text_of(dispute, "id"), status=status, actor=ACTOR, now=now
    )
    if status == "lost":
        return _refund_to(
            event,
            event.amount_cents,
            refund_id=f"dispute:{text_of(dispute, 'id')}",
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
