"""The `data` of a webhook message: the API's JSON of the object it is about.

Every object is serialized by its API serializer, so a message's `data` is what the API answers
for the object; a conversion is the answer the events API gave for it.
"""

from __future__ import annotations

from typing import Any

from affiliates.api import affiliate_json
from affiliates.models import Affiliate
from commissions.api import commission_json
from commissions.models import Commission
from payouts.api import payout_json
from payouts.models import Payout
from tracking.api import referral_json
from tracking.models import Event, Referral


def load(kind: str, public_id: str, known: Any = None) -> tuple[bool, dict[str, Any]] | None:
    """(livemode, data) of the object, read inside the transaction that changed it; None if gone.
    `known` is the object itself when the change handed it over with its announcement (a new
    commission with its affiliate, event and rule; a conversion's event with its answer; a new
    referral with its affiliate): serialized as it is, not read back."""
    if kind == "commission" and isinstance(known, Commission):
        return known.livemode, commission_json(known)
    if kind == "conversion" and isinstance(known, Event) and known.response:
        return known.livemode, dict(known.response)
    if kind == "referral" and isinstance(known, Referral):
        return known.livemode, referral_json(known)
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
