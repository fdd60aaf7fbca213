"""The one place that builds a Stripe client. STRIPE_API_BASE points it at a local fake in tests.

Ground floor: payouts sends transfers with it, affiliates provisions promotion codes with it.
"""

from __future__ import annotations

import threading

import stripe
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Errors after which sending again with the same request cannot succeed. Anything else (network,
# 5xx, rate limits) is retried.
PERMANENT_ERRORS = (
    stripe.InvalidRequestError,
    stripe.CardError,
    stripe.PermissionError,
    stripe.AuthenticationError,
    stripe.IdempotencyError,
)


# One client per key and address, for the life of the process: its HTTP client keeps a session
# per thread, so a payout run reuses open connections instead of opening one per transfer.
_clients: dict[tuple[str, str], stripe.StripeClient] = {}
_clients_lock = threading.Lock()


def stripe_client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise ImproperlyConfigured("STRIPE_SECRET_KEY is not set; Stripe is unavailable.")
    key = (settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE)
    client = _clients.get(key)
    if client is None:
        options: dict = {"max_network_retries": 0}  # Celery owns retries, with backoff and the same key
        if settings.STRIPE_API_BASE:
            base = settings.STRIPE_API_BASE.rstrip("/")
            options["base_addresses"] = {"api": base, "connect": base, "files": base}
        with _clients_lock:
            client = _clients.setdefault(key, stripe.StripeClient(settings.STRIPE_SECRET_KEY, **options))
    return client


def stripe_enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def stripe_livemode() -> bool:
    """Does the configured key act on Stripe's live mode? Live keys provision live affiliates' codes,
    test keys test affiliates' (as Stripe's test-mode webhooks feed refapp's test mode)."""
    return settings.STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))
