"""Privacy requests (issue 20 item 5): export everything stored about an affiliate or a referred
customer as JSON, and erase it.

It lives on the payouts floor because it is the one domain floor that sees every table holding
personal data (affiliates, clicks, events, referrals, payouts). Scope: one program and one mode
(a test key never reads or erases live data).

Erasure replaces personal fields with tombstones and keeps every money row: commissions, payouts
and refunds keep their amounts, statuses and dates, so balances and the audit history still add
up. What counts as personal: an affiliate's name, email, website, promotion text, PayPal email,
Stripe account id, portal sign-in addresses (hashed) and sign-in links; a customer's id, email
hash and address hash, the visitor ids that tie a browser to its visits, the clicks' user agents,
address prefixes and hashes, referrers and the query strings of landing URLs (they carry
campaign ids and, on some sites, emails). Order ids stay: they are the merchant's, and refunds and
replays need them. The audit row of an erasure names the actor and the subject's public id and
row counts, never the personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet

from affiliates.models import Affiliate, MagicLink, PortalSession, Program, TaxForm, TaxProfile
from affiliates.portal_services import BANK_FIELDS
from commissions.models import Commission, Refund
from commissions.services import balances
from refapp.hashing import email_hash
from refapp.models import Actor, audit_log
from tracking.models import Click, Event, Referral

from .models import CustomerCredit, Payout

ERASED_NAME = "Erased"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


@dataclass
class Subject:
    """Who a request is about: an affiliate, or a referred customer by email and/or customer id."""

    program: Program
    livemode: bool
    affiliate: Affiliate | None = None
    email: str = ""
    customer_id: str = ""

    @property
    def kind(self) -> str:
        return "affiliate" if self.affiliate is not None else "customer"


def _customer_rows(subject: Subject) -> tuple[QuerySet[Event], QuerySet[Referral], QuerySet[Click]]:
    match = Q(pk__in=[])
    if subject.email:
        match |= Q(customer_email_hash=email_hash(subject.email))
    if subject.customer_id:
        match |= Q(customer_id=subject.customer_id)
    events = Event.objects.filter(match, program=subject.program, livemode=subject.livemode)
    referrals = Referral.objects.filter(program=subject.program, livemode=subject.livemode).filter(
        Q(pk__in=events.exclude(referral=None).values("referral_id"))
        | (Q(customer_id=subject.customer_id) if subject.customer_id else Q(pk__in=[]))
    )
    visitors = {v for v in events.values_list("visitor_id", flat=True) if v} | {
        v for v in referrals.values_list("visitor_id", flat=True) if v
    }
    click_ids = {c for c in events.values_list("click_id", flat=True) if c} | {
        c for c in referrals.values_list("click_id", flat=True) if c
    }
    clicks = Click.objects.filter(program=subject.program, affiliate__livemode=subject.livemode).filter(
        Q(pk__in=click_ids) | Q(visitor_id__in=visitors)
    )
    return events, referrals, clicks


def _click_json(click: Click) -> dict[str, Any]:
    return {
        "created_at": _iso(click.created_at),
        "visitor_id": click.visitor_id,
        "landing_url": click.landing_url,
        "referrer": click.referrer,
        "user_agent": click.user_agent,
        "country": click.country,
        "ip_prefix": click.ip_prefix,
        "ip_hash": click.ip_hash,
        "utm_source": click.utm_source,
        "utm_medium": click.utm_medium,
        "utm_campaign": click.utm_campaign,
        "sub_id": click.sub_id,
    }


def _customer_export(subject: Subject) -> dict[str, Any]:
    events, referrals, clicks = _customer_rows(subject)
    return {
        "events": [
            {
                "id": e.public_id,
                "name": e.name,
                "order_id": e.order_id,
                "customer_id": e.customer_id,
                "customer_email_hash": e.customer_email_hash,
                "ip_hash": e.ip_hash,
                "visitor_id": e.visitor_id,
                "amount_cents": e.amount_cents,
                "refunded_cents": e.refunded_cents,
                "currency": e.currency,
                "metadata": e.metadata,
                "occurred_at": _iso(e.occurred_at),
            }
            for e in events.order_by("pk")
        ],
        "referrals": [
            {
                "id": r.public_id,
                "customer_id": r.customer_id,
                "visitor_id": r.visitor_id,
                "method": r.method,
                "created_at": _iso(r.created_at),
            }
            for r in referrals.order_by("pk")
        ],
        "clicks": [_click_json(c) for c in clicks.order_by("created_at", "pk")[:10_000]],
    }


def _tax_export(affiliate: Affiliate) -> dict[str, Any] | None:
    profile = TaxProfile.objects.filter(affiliate=affiliate).first()
    if profile is None:
        return None
    return {
        "legal_name": profile.legal_name,
        "country": profile.country,
        "is_business": profile.is_business,
        "tax_id": profile.tax_id_display,
        "form_type": profile.form_type,
        "form_on_file": TaxForm.objects.filter(affiliate=affiliate).exists(),
    }


def _affiliate_export(affiliate: Affiliate) -> dict[str, Any]:
    return {
        "profile": {
            "id": affiliate.public_id,
            "name": affiliate.name,
            "email": affiliate.email,
            "website": affiliate.website,
            "promotion": affiliate.promotion,
            "paypal_email": affiliate.paypal_email,
            "stripe_account_id": affiliate.stripe_account_id,
            "wise_email": affiliate.wise_email,
            # Bank numbers and tax ids leave refapp only in the files that pay or report: masked here.
            "bank_account": affiliate.bank_display,
            "bank_account_holder": affiliate.bank_account_holder,
            "tax_details": _tax_export(affiliate),
            "code": affiliate.code,
            "status": affiliate.status,
            "kind": affiliate.kind,
            "customer_id": affiliate.customer_id or "",
            "created_at": _iso(affiliate.created_at),
        },
        "portal_sessions": [
            {"ip_hash": s.ip_hash, "created_at": _iso(s.created_at)}
            for s in PortalSession.objects.filter(affiliate=affiliate).order_by("pk")
        ],
        "sign_in_links": [
            {"email": m.email, "purpose": m.purpose, "created_at": _iso(m.created_at)}
            for m in MagicLink.objects.filter(affiliate=affiliate).order_by("pk")
        ],
        "commissions": [
            {
                "id": c.public_id,
                "kind": c.kind,
                "amount_cents": c.amount_cents,
                "currency": c.currency,
                "status": c.status,
                "created_at": _iso(c.created_at),
            }
            for c in Commission.objects.filter(affiliate=affiliate).order_by("pk")
        ],
        "payouts": [
            {
                "id": p.public_id,
                "period": p.period,
                "method": p.method,
                "destination": p.destination,
                "amount_cents": p.amount_cents,
                "currency": p.currency,
                "status": p.status,
                "paid_at": _iso(p.paid_at),
            }
            for p in Payout.objects.filter(affiliate=affiliate).order_by("pk")
        ],
        "balances": balances(affiliate_id=affiliate.pk, livemode=affiliate.livemode),
        # A customer referrer's account credits (refer-a-friend): the Stripe customer they went to.
        "customer_credits": [
            {
                "id": c.public_id,
                "kind": c.kind,
                "amount_cents": c.amount_cents,
                "currency": c.currency,
                "status": c.status,
                "stripe_customer_id": c.stripe_customer_id,
                "created_at": _iso(c.created_at),
            }
            for c in CustomerCredit.objects.filter(affiliate=affiliate).order_by("pk")
        ],
    }


def privacy_export(subject: Subject) -> dict[str, Any]:
    """Everything stored about the subject, as JSON-ready data."""
    body: dict[str, Any] = {"subject": subject.kind, "livemode": subject.livemode}
    if subject.affiliate is not None:
        body["affiliate"] = _affiliate_export(subject.affiliate)
    else:
        body["customer"] = _customer_export(subject)
    return body


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0].split("#", 1)[0]


def _erase_clicks(clicks: QuerySet[Click]) -> int:
    erased = 0
    for click in clicks.only("pk", "created_at", "landing_url").iterator():
        # Bounded on created_at too: on PostgreSQL the update reads one month, not every month.
        erased += Click.objects.filter(pk=click.pk, created_at=click.created_at).update(
            visitor_id="",
            landing_url=_strip_query(click.landing_url),
            referrer="",
            user_agent="",
            ip_prefix="",
            ip_hash="",
        )
    return erased


def privacy_erase(*, subject: Subject, actor: Actor | None) -> dict[str, int]:
    """Replace the subject's personal data with tombstones; money rows stay as they are. Safe to
    repeat (a second run finds tombstones and changes nothing personal). Returns row counts."""
    with transaction.atomic():
        if subject.affiliate is not None:
            affiliate = Affiliate.objects.select_for_update().get(pk=subject.affiliate.pk)
            affiliate.name = ERASED_NAME
            affiliate.email = f"erased-{affiliate.public_id}@erased.invalid"
            affiliate.website = ""
            affiliate.promotion = ""
            affiliate.paypal_email = ""
            affiliate.stripe_account_id = ""
            if affiliate.customer_id:  # a tombstone keeps the per-customer key unique, as for referrals
                affiliate.customer_id = f"erased-{affiliate.public_id}"
            affiliate.wise_email = ""
            for name in BANK_FIELDS:
                setattr(affiliate, name, "")
            affiliate.save()  # recomputes email_hash from the tombstone
            counts = {
                "affiliates": 1,
                "portal_sessions": PortalSession.objects.filter(affiliate=affiliate).delete()[0],
                "sign_in_links": MagicLink.objects.filter(affiliate=affiliate).delete()[0],
                # The destination was the PayPal email or Stripe account at the time of the run.
                "payouts": Payout.objects.filter(affiliate=affiliate).update(
                    destination="erased", bank_details={}
                ),
                "tax_details": TaxProfile.objects.filter(affiliate=affiliate).delete()[0],
                "tax_forms": TaxForm.objects.filter(affiliate=affiliate).delete()[0],
                # Like a payout's destination: the credit rows stay, the customer they named goes.
                "customer_credits": CustomerCredit.objects.filter(affiliate=affiliate).update(
                    stripe_customer_id="erased"
                ),
            }
            audit_log(actor=actor, action="privacy.erased", obj=affiliate, data={"counts": counts})
            return counts
        events, referrals, clicks = _customer_rows(subject)
        event_ids = list(events.values_list("pk", flat=True))
        referral_rows = list(referrals.values_list("pk", "public_id"))
        counts = {"clicks": _erase_clicks(clicks)}
        counts["events"] = Event.objects.filter(pk__in=event_ids).update(
            customer_id="", customer_email_hash="", ip_hash="", visitor_id="", metadata={}
        )
        for pk, public_id in referral_rows:
            # A tombstone, not NULL: a referral without a customer id is an open referral that a
            # later conversion could pick up again; the tombstone keeps the per-customer key unique.
            Referral.objects.filter(pk=pk).update(customer_id=f"erased-{public_id}", visitor_id="")
        counts["referrals"] = len(referral_rows)
        counts["refunds_kept"] = Refund.objects.filter(event_id__in=event_ids).count()
        audit_log(
            actor=actor,
            action="privacy.erased",
            obj=subject.program,
            data={"subject": "customer", "counts": counts},
        )
        return counts


# --- the API's shapes (refapp/urls_api.py puts them in the OpenAPI document) -------------------

_ROWS = {"type": "array", "items": {"type": "object"}}
PRIVACY_EXPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["subject", "livemode"],
    "properties": {
        "subject": {"enum": ["affiliate", "customer"]},
        "livemode": {"type": "boolean"},
        "affiliate": {
            "type": "object",
            "required": ["profile", "portal_sessions", "sign_in_links", "commissions", "payouts", "balances"],
            "properties": {
                "profile": {"type": "object"},
                "portal_sessions": _ROWS,
                "sign_in_links": _ROWS,
                "commissions": _ROWS,
                "payouts": _ROWS,
                "balances": {
                    "type": "object",
                    "required": ["pending", "approved", "paid"],
                    "properties": {k: {"type": "integer"} for k in ("pending", "approved", "paid")},
                },
            },
        },
        "customer": {
            "type": "object",
            "required": ["events", "referrals", "clicks"],
            "properties": {"events": _ROWS, "referrals": _ROWS, "clicks": _ROWS},
        },
    },
}
PRIVACY_SELECTOR_PROPERTIES: dict[str, Any] = {
    "email": {"type": "string", "maxLength": 254, "description": "A referred customer's email."},
    "customer_id": {"type": "string", "maxLength": 255, "description": "A referred customer's id."},
    "affiliate": {"type": "string", "maxLength": 32, "description": "An affiliate id."},
}
PRIVACY_SELECTOR_PARAMETERS: list[dict[str, Any]] = [
    {"name": name, "in": "query", "schema": schema} for name, schema in PRIVACY_SELECTOR_PROPERTIES.items()
]
PRIVACY_ERASE_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Exactly one of email, customer_id or affiliate.",
    "properties": PRIVACY_SELECTOR_PROPERTIES,
}
PRIVACY_ERASE_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["subject", "erased"],
    "properties": {
        "subject": {"enum": ["affiliate", "customer"]},
        "erased": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}
