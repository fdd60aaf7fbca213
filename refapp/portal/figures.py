"""Helpers the portal pages share: an affiliate's links, and when and how much the next payout pays."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.urls import reverse

from affiliates.models import Affiliate, Program
from affiliates.portal_services import tax_details_complete

PAYOUT_HOUR = 6  # payouts run on the program's payout day at 06:00 UTC


def referral_link(program: Program, code: str) -> str:
    """The program website with ?ref=CODE (kept valid when the website already has a query)."""
    parts = urlsplit(program.website)
    query = "&".join(p for p in (parts.query, urlencode({"ref": code})) if p)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))


def go_link(program: Program, code: str) -> str:
    return settings.BASE_URL + reverse("go", kwargs={"program_slug": program.slug, "code": code})


def next_payout_at(program: Program, now: datetime) -> datetime:
    """The next scheduled payout run: the program's payout day at 06:00 UTC, this month or next."""
    run = datetime.combine(now.date().replace(day=program.payout_day), time(PAYOUT_HOUR), tzinfo=UTC)
    if run <= now:
        first_next = (now.date().replace(day=1) + timedelta(days=32)).replace(day=program.payout_day)
        run = datetime.combine(first_next, time(PAYOUT_HOUR), tzinfo=UTC)
    return run


def payout_estimate(balances: dict, run: datetime) -> dict:
    """What the next run would pay: approved money plus pending money that unlocks before it."""
    unlocking = sum(u["amount_cents"] for u in balances["unlocks"] if u["day"] < run.date())
    expected = balances["approved_cents"] + unlocking
    minimum = balances["minimum_payout_cents"]
    return {
        "run_at": run,
        "expected_cents": expected,
        "unlocking_cents": unlocking,
        "reaches_minimum": expected > 0 and expected >= minimum,
        "short_cents": max(0, minimum - expected),
    }


def tax_hold(affiliate: Affiliate) -> bool:
    """Whether the program holds this affiliate's payouts until they enter their tax details (the
    payout preview says the same: payouts.services.TAX_HOLD)."""
    return affiliate.program.require_tax_details and affiliate.pk not in tax_details_complete([affiliate.pk])
