"""The `data` of a webhook message: the API's JSON of the object it is about.

Affiliates and commissions reuse their API serializers; a conversion is the answer the events API
gave for it. Payouts and referrals have no API serializer yet, so their JSON is written here.
"""

from __future__ import annotations

from typing import Any

from affiliates.api import affiliate_json
from affiliates.models import Affiliate
from commissions.api import commission_json
from commissions.models import Commission
from payouts.models import Payout
from tracking.models import Event, Referral


def _iso(moment) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def payout_json(payout: Payout) -> dict[str, Any]:
    return {
        "id": payout.public_id,
        "affiliate": payout.affiliate.public_id,
        "period": payout.period,
        "method": payout.method,
        "amount_cents": payout.amount_cents,
        "currency": payout.currency,
        "status": payout.status,
        "transfer_id": payout.transfer_id,
        "reference": payout.reference,
        "failure_reason": payout.failure_reason,
        "livemode": True,
        "created_at": _iso(payout.created_at),
        "paid_at": _iso(payout.paid_at),
    }


def referral_json(referral: Referral) -> dict[str, Any]:
    return {
        "id": referral.public_id,
        "affiliate": referral.affiliate.public_id,
        "customer_id": referral.customer_id,
        "method": referral.method,
        "livemode": referral.livemode,
        "created_at": _iso(referral.created_at),
    }


def load(kind: str, public_id: str) -> tuple[bool, dict[str, Any]] | None:
    """(livemode, data) of the object, read inside the transaction that changed it; None if gone."""
    if kind == "affiliate":
        affiliate = Affiliate.objects.select_related("program", "group").filter(public_id=public_id).first()
        return (affiliate.livemode, affiliate_json(affiliate)) if affiliate else None
    if kind == "commission":
        commission = (
            Commission.objects.select_related("affiliate", "event", "reverses", "rule")
            .filter(public_id=public_id)
            .first()
        )
        return (commission.livemode, commission_json(commission)) if commission else None
    if kind == "conversion":
        event = Event.objects.filter(public_id=public_id).first()
        return (event.livemode, dict(event.response or {"id": event.public_id})) if event else None
    if kind == "payout":
        payout = Payout.objects.select_related("affiliate").filter(public_id=public_id).first()
        return (True, payout_json(payout)) if payout else None
    if kind == "referral":
        referral = Referral.objects.select_related("affiliate").filter(public_id=public_id).first()
        return (referral.livemode, referral_json(referral)) if referral else None
    return None
