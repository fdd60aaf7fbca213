"""Stripe events received at `POST /webhooks/stripe`: recorded once by event id, then handled.

Sales, refunds and disputes are recorded by `commissions.stripe_intake`; `account.updated` is about
paying and handled in `payouts.webhooks`. The view verifies the signature and the envelope; this
service records and handles in one transaction, so a handler that fails rolls the record back and
Stripe's retry is handled again, and a duplicate delivery waits on the unique id and is ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from commissions.stripe_intake import HANDLERS as SALES_HANDLERS

from .models import StripeEvent
from .webhooks import HANDLERS as PAYOUT_HANDLERS

HANDLERS = {**SALES_HANDLERS, **PAYOUT_HANDLERS}


def stripe_event_receive(*, event: dict[str, Any], slug: str | None, now: datetime) -> tuple[bool, str]:
    """Record and handle one verified event. Returns (duplicate, result).

    Raises `commissions.stripe_intake.StripePayloadError` when the event's object is not shaped as
    Stripe sends it; then nothing is recorded, so a corrected delivery is still handled.
    """
    event_id, event_type = event["id"], event.get("type") or ""
    livemode = bool(event.get("livemode"))
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = StripeEvent.objects.create(
                    event_id=event_id, type=event_type[:100], livemode=livemode, received_at=now
                )
        except IntegrityError:
            return True, "duplicate"
        handler = HANDLERS.get(event_type)
        if handler is None:
            result = "ignored: unhandled type"
        else:
            result = handler(event["data"]["object"], livemode=livemode, slug=slug, now=now)
        record.result = result[:500]
        record.save(update_fields=["result"])
    return False, result
