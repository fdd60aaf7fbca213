"""Fake Stripe API server for tests (stdlib only; the real stripe library talks to it over HTTP)."""

from .server import (
    DEFAULT_API_VERSION,
    FakeStripe,
    RequestRecord,
    build_account_object,
    build_charge,
    build_checkout_session,
    build_dispute,
    build_invoice,
    build_transfer,
    decode_form,
    new_id,
    sign_payload,
)

__all__ = [
    "DEFAULT_API_VERSION",
    "FakeStripe",
    "RequestRecord",
    "build_account_object",
    "build_charge",
    "build_checkout_session",
    "build_dispute",
    "build_invoice",
    "build_transfer",
    "decode_form",
    "new_id",
    "sign_payload",
]
