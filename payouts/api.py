"""The JSON of the payouts API and its schema, side by side.

refapp/openapi.py puts the schema in /api/v1/openapi.json and the contract test holds every
response to it. Payouts have no mode of their own: only live commissions of live affiliates are
ever paid, so a test key reads the payouts of test affiliates, which is none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .models import Payout

_STR = {"type": "string"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}

PAYOUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "examples": ["po_…"]},
        "affiliate": _STR,
        "period": {"type": "string", "examples": ["2026-11"]},
        "method": {"type": "string", "enum": list(Payout.Method.values)},
        "destination": _STR,
        "amount_cents": {"type": "integer"},
        "currency": _STR,
        "status": {"type": "string", "enum": list(Payout.Status.values)},
        "transfer_id": _STR,
        "reference": _STR,
        "failure_reason": _STR,
        "created_at": {"type": "string", "format": "date-time"},
        "paid_at": _TIME_OR_NULL,
        "failed_at": _TIME_OR_NULL,
    },
}
PAYOUT_SCHEMA["required"] = list(PAYOUT_SCHEMA["properties"])

PAYOUT_STATUS_PARAMETER: dict[str, Any] = {
    "name": "status",
    "in": "query",
    "schema": {"type": "string", "enum": list(Payout.Status.values)},
}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def payout_json(payout: Payout) -> dict[str, Any]:
    return {
        "id": payout.public_id,
        "affiliate": payout.affiliate.public_id,
        "period": payout.period,
        "method": payout.method,
        "destination": payout.destination,
        "amount_cents": payout.amount_cents,
        "currency": payout.currency,
        "status": payout.status,
        "transfer_id": payout.transfer_id,
        "reference": payout.reference,
        "failure_reason": payout.failure_reason,
        "created_at": _iso(payout.created_at),
        "paid_at": _iso(payout.paid_at),
        "failed_at": _iso(payout.failed_at),
    }
