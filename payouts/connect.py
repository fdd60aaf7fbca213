"""Stripe Connect state of affiliates' payout accounts, as Stripe reports it (`account.updated`)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from affiliates.models import Affiliate
from refapp.models import Actor, audit_log


def stripe_account_update(
    *, account_id: str, payouts_enabled: bool, actor: Actor, now: datetime
) -> tuple[int, int]:
    """Record whether a connected Stripe account can receive payouts. Safe to call twice.

    Every affiliate on the account is locked (primary-key order) and re-checked: only a real change
    is written, each with an audit row naming the actor, so a redelivered or repeated event changes
    and logs nothing. Whether an affiliate can be paid decides who the next payout run pays, so the
    change is kept like any other money-relevant one. Returns (affiliates on the account, changed).
    """
    if not account_id:
        return 0, 0
    changed = 0
    with transaction.atomic():
        affiliates = list(
            Affiliate.objects.select_for_update().filter(stripe_account_id=account_id).order_by("pk")
        )
        for affiliate in affiliates:
            if affiliate.stripe_payouts_enabled == payouts_enabled:
                continue
            affiliate.stripe_payouts_enabled = payouts_enabled
            affiliate.save(update_fields=["stripe_payouts_enabled"])
            audit_log(
                actor=actor,
                action="affiliate.stripe_payouts_enabled"
                if payouts_enabled
                else "affiliate.stripe_payouts_disabled",
                obj=affiliate,
                data={
                    "stripe_account": account_id,
                    "payouts_enabled": payouts_enabled,
                    "at": now.isoformat(),
                },
            )
            changed += 1
    return len(affiliates), changed
