"""The Stripe client of payouts: built by `refapp.stripe_api`, the one place that builds it."""

from __future__ import annotations

from refapp.stripe_api import PERMANENT_ERRORS, _clients, stripe_client, stripe_enabled

__all__ = ["PERMANENT_ERRORS", "_clients", "stripe_client", "stripe_enabled"]
