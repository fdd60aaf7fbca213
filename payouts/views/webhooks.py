"""POST /webhooks/stripe: verified, checked for the shape of a Stripe event, then recorded once."""

from __future__ import annotations

import logging

import stripe
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from commissions.stripe_intake import StripePayloadError
from refapp.api import ApiError, error_response, loads_json

from ..stripe_events import stripe_event_receive

logger = logging.getLogger(__name__)
MAX_WEBHOOK_BYTES = 1024 * 1024  # Stripe events are far smaller; refuse anything absurd
EVENT_ID_MAX = 255  # StripeEvent.event_id


def _malformed(message: str) -> HttpResponse:
    return error_response(400, "invalid_request", message)


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
        # The signature alone, then our own parse: the library's parser assumes an object at the top.
        stripe.WebhookSignature.verify_header(
            payload, request.headers.get("Stripe-Signature", ""), secret, stripe.Webhook.DEFAULT_TOLERANCE
        )
        # The input gate of every JSON body: strict UTF-8, no NUL or lone surrogate, bounded depth.
        event = loads_json(payload)
    except stripe.SignatureVerificationError:
        return error_response(
            400, "invalid_signature", "The Stripe-Signature header does not match this payload."
        )
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.fields)
    # A correctly signed body is still checked: a handler must never meet a list for an event or a
    # string for an object, which used to answer 500 (and Stripe retried it for days).
    if not isinstance(event, dict):
        return _malformed("The webhook body is not a Stripe event object.")
    event_id, event_type = event.get("id"), event.get("type", "")
    if not isinstance(event_id, str) or not event_id or len(event_id) > EVENT_ID_MAX or "\x00" in event_id:
        return _malformed("The event has no valid id.")
    if not isinstance(event_type, str):
        return _malformed("The event's type is not a string.")
    if not isinstance(event.get("data"), dict) or not isinstance(event["data"].get("object"), dict):
        return _malformed("The event has no data.object.")
    slug = request.GET.get("program") or None
    try:
        duplicate, result = stripe_event_receive(event=event, slug=slug, now=timezone.now())
    except StripePayloadError as exc:
        logger.warning("stripe webhook %s %s refused: %s", event_id, event_type, exc)
        return _malformed(f"The {event_type} object is not shaped as Stripe sends it: {exc}")
    if duplicate:
        return JsonResponse({"received": True, "duplicate": True})
    logger.info("stripe webhook %s %s: %s", event_id, event_type, result)
    return JsonResponse({"received": True, "result": result})
