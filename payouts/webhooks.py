"""Stripe webhook handlers about paying affiliates (docs/architecture.md): `account.updated`.

Sales, refunds and disputes are the merchant's conversions and are handled in
`commissions.stripe_intake`; the endpoint (`payouts.views.webhooks`) routes to both.
"""

from __future__ import annotations

from datetime import datetime

from commissions.stripe_intake import text_of
from refapp.models import Actor

from .connect import stripe_account_update

ACTOR = Actor("stripe")  # a system actor: no user, labelled by who spoke


def account_updated(account: dict, *, livemode: bool, slug: str | None, now: datetime) -> str:
    enabled = bool(account.get("payouts_enabled"))
    count, changed = stripe_account_update(
        account_id=text_of(account, "id"), payouts_enabled=enabled, actor=ACTOR, now=now
    )
    return f"payouts_enabled={enabled} for {count} affiliate(s), {changed} changed"


HANDLERS = {
    "account.updated": account_updated,
}
