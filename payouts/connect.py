"""Stripe Connect onboarding: an Express account per affiliate, and whether Stripe can pay it
(from the portal's return page and from Stripe's `account.updated`).

These writes change where an affiliate's money goes, so each one locks the affiliate row, re-checks
it, writes and records an audit row with who did it. Stripe is called before, outside any
transaction: a slow Stripe never holds a row lock, and a crash after Stripe answered is healed by
doing it again (account creation carries an idempotency key, so the same account comes back).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from affiliates.models import Affiliate
from refapp.models import Actor, audit_log

from .stripe_client import stripe_client


class ConnectNotAllowed(Exception):
    """Only an approved (active) affiliate may connect a payout account."""


def affiliate_connect_account_set(*, affiliate: Affiliate, account_id: str, actor: Actor | None) -> Affiliate:
    """Record the affiliate's Express account and pay them through Stripe from now on.

    The first account sticks: when two tabs raced through the onboarding, the second call finds
    the account set and changes nothing. Raises ConnectNotAllowed if the affiliate is no longer
    active.
    """
    with transaction.atomic():
        locked = Affiliate.objects.select_for_update().get(pk=affiliate.pk)
        if locked.stripe_account_id:
            return locked
        if locked.status != Affiliate.Status.ACTIVE:
            raise ConnectNotAllowed("Your account must be approved before you connect a payout method.")
        previous_method = locked.payout_method
        locked.stripe_account_id = account_id
        locked.payout_method = Affiliate.PayoutMethod.STRIPE
        locked.save(update_fields=["stripe_account_id", "payout_method"])
        audit_log(
            actor=actor,
            action="affiliate.stripe_connected",
            obj=locked,
            data={"account": account_id, "payout_method": [previous_method, locked.payout_method]},
        )
    return locked


def affiliate_connect_status_set(
    *, affiliate: Affiliate, account_id: str, payouts_enabled: bool, actor: Actor | None
) -> Affiliate:
    """Store what Stripe says about the affiliate's account, and pay them through Stripe.

    A no-op when the affiliate's account is no longer `account_id` (the read is stale) or nothing
    changed; otherwise audited with the old and new values.
    """
    with transaction.atomic():
        locked = Affiliate.objects.select_for_update().get(pk=affiliate.pk)
        if locked.stripe_account_id != account_id:
            return locked
        wanted = {"stripe_payouts_enabled": payouts_enabled, "payout_method": Affiliate.PayoutMethod.STRIPE}
        changes = {
            name: [getattr(locked, name), value]
            for name, value in wanted.items()
            if getattr(locked, name) != value
        }
        if not changes:
            return locked
        for name, (_old, value) in changes.items():
            setattr(locked, name, value)
        locked.save(update_fields=list(changes))
        audit_log(
            actor=actor,
            action="affiliate.stripe_account_updated",
            obj=locked,
            data={"account": account_id, **changes},
        )
    return locked


def connect_onboarding_start(
    *, affiliate: Affiliate, actor: Actor | None, return_url: str, refresh_url: str
) -> str:
    """The URL of Stripe's onboarding for this affiliate, creating their Express account once.

    Raises ConnectNotAllowed for an affiliate that is not active, and stripe.StripeError when
    Stripe fails (nothing is written then).
    """
    if affiliate.status != Affiliate.Status.ACTIVE:
        raise ConnectNotAllowed("Your account must be approved before you connect a payout method.")
    if not affiliate.stripe_account_id:
        account = stripe_client().v1.accounts.create(
            params={
                "type": "express",
                "email": affiliate.email,
                "capabilities": {"transfers": {"requested": True}},
                "metadata": {"refapp_affiliate": affiliate.public_id, "program": affiliate.program.slug},
            },
            options={"idempotency_key": f"connect-{affiliate.public_id}"},
        )
        affiliate = affiliate_connect_account_set(affiliate=affiliate, account_id=account.id, actor=actor)
    return connect_onboarding_link(affiliate=affiliate, return_url=return_url, refresh_url=refresh_url)


def connect_onboarding_link(*, affiliate: Affiliate, return_url: str, refresh_url: str) -> str:
    """A fresh Account Link into Stripe's onboarding (they expire, and work once)."""
    link = stripe_client().v1.account_links.create(
        params={
            "account": affiliate.stripe_account_id,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "type": "account_onboarding",
        }
    )
    return link.url


def connect_onboarding_returned(*, affiliate: Affiliate, actor: Actor | None) -> Affiliate:
    """Back from Stripe: read the account's state now rather than waiting for account.updated.

    Raises stripe.StripeError when Stripe cannot be read (nothing is written then).
    """
    account = stripe_client().v1.accounts.retrieve(affiliate.stripe_account_id)
    return affiliate_connect_status_set(
        affiliate=affiliate, account_id=account.id, payouts_enabled=bool(account.payouts_enabled), actor=actor
    )


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
