"""The `data` of a webhook message: the API's JSON of the object it is about.

Every object is serialized by its API serializer, so a message's `data` is what the API answers
for the object; a conversion is the answer the events API gave for it.

A conversion's own messages (`AT_FIRST_ATTEMPT`) are written without their data when the change
hands its objects over (the conversion's one-statement writer, commissions.ingest_pg, and the ORM
writer alike): the delivery reads the object and freezes the payload at the message's first
attempt (webhooks.delivery), so retries and replays send the same bytes. Serializing and storing
a commission's JSON in the conversion's own statement was most of what an endpoint added to a
conversion's cost (`make bench`'s webhooks section). A conversion's data is the answer stored on
its event, which never changes; a commission's is the commission as the API shows it at the first
attempt (normally within a second of the conversion; a later status already shows there, and its
own message follows in order).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from affiliates.api import affiliate_json
from affiliates.models import Affiliate
from commissions.api import commission_json
from commissions.models import Commission
from payouts.api import payout_json
from payouts.models import Payout
from tracking.api import referral_json
from tracking.models import Event, Referral

AT_FIRST_ATTEMPT = frozenset({"conversion.created", "commission.created"})
GONE = {"deleted": True}  # the data of a message whose object was deleted before its first attempt


def envelope(*, public_id: str, event_type: str, created: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """A message's payload: what its POST's body carries."""
    return {
        "id": public_id,
        "type": event_type,
        "created": created.isoformat().replace("+00:00", "Z"),
        "data": data,
    }


def livemode_of(kind: str, known: Any) -> bool | None:
    """The mode of an object handed over with its announcement (None: not handed over)."""
    if (kind == "commission" and isinstance(known, Commission)) or (
        kind == "conversion" and isinstance(known, Event)
    ):
        return known.livemode
    return None


def load_many(kind: str, public_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The data of each of these objects of one kind, read now; an id that is gone is left out."""
    if kind == "commission":
        objects = Commission.objects.select_related("affiliate", "event", "reverses", "rule").filter(
            public_id__in=public_ids
        )
        return {c.public_id: commission_json(c) for c in objects}
    if kind == "conversion":
        rows = Event.objects.filter(public_id__in=public_ids).values_list("public_id", "response")
        return {public_id: dict(response or {"id": public_id}) for public_id, response in rows}
    found = {}
    for public_id in public_ids:
        loaded = load(kind, public_id)
        if loaded is not None:
            found[public_id] = loaded[1]
    return found


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
