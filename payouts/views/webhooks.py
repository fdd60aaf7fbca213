"""POST /webhooks/stripe: verified, deduplicated by Stripe event id, handled in one transaction."""

from __future__ import annotations

import json
import logging

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from commissions.stripe_intake import HANDLERS as SALES_HANDLERS
from refapp.api import error_response

from ..models import StripeEvent
from ..webhooks import HANDLERS as PAYOUT_HANDLERS

# Sales, refunds and disputes are recorded by commissions; account.updated is about paying.
HANDLERS = {**SALES_HANDLERS, **PAYOUT_HANDLERS}

logger = logging.getLogger(__name__)
MAX_WEBHOOK_BYTES = 1024 * 1024  # Stripe events are far smaller; refuse anything absurd


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        return error_response(503, "not_configured", "STRIPE_WEBHOOK_SECRET is not set on this server.")
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_WEBHOOK_BYTES:
        return error_response(413, "payload_too_large", "Webhook body is too large.")
    payload = request.body
    try:
        stripe.Webhook.construct_event(payload, request.headers.get("Stripe-Signature", ""), secret)
    except stripe.SignatureVerificationError:
        return error_response(
            400, "invalid_signature", "The Stripe-Signature header does not match this payload."
        )
    except ValueError:
        return error_response(400, "malformed_json", "The webhook body is not a Stripe event.")
    event = json.loads(payload)
    event_id, event_type = event.get("id"), event.get("type", "")
    if not event_id:
        return error_response(400, "invalid_request", "The event has no id.")
    now = timezone.now()
    # Record and handle together: a handler that fails rolls the record back, so Stripe's retry of
    # the event is handled again; a duplicate delivery waits on the unique id and is then ignored.
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = StripeEvent.objects.create(
                    event_id=event_id,
                    type=event_type[:100],
                    livemode=bool(event.get("livemode")),
                    received_at=now,
                )
        except IntegrityError:
            return JsonResponse({"received": True, "duplicate": True})
        handler = HANDLERS.get(event_type)
        if handler is None:
            result = "ignored: unhandled type"
        else:
            obj = (event.get("data") or {}).get("object") or {}
            result = handler(
                obj, livemode=bool(event.get("livemode")), slug=request.GET.get("program") or None, now=now
            )
        record.result = result[:500]
        record.save(update_fields=["result"])
    logger.info("stripe webhook %s %s: %s", event_id, event_type, result)
    return JsonResponse({"received": True, "result": result})
