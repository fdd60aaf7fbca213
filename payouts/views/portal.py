"""Portal: payout history and Stripe Connect onboarding (Express account + Account Link)."""

from __future__ import annotations

import stripe
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from affiliates.access import portal_required
from affiliates.models import Affiliate
from commissions import stats
from commissions.views.portal import PortalRequest, next_payout_at, payout_estimate
from refapp.models import Actor, audit_log

from ..models import Payout
from ..stripe_client import stripe_client, stripe_enabled


@require_GET
@portal_required
def payouts(request: PortalRequest) -> HttpResponse:
    affiliate = request.affiliate
    balances = stats.affiliate_balances(affiliate)
    context = {
        "affiliate": affiliate,
        "program": affiliate.program,
        "balances": balances,
        "estimate": payout_estimate(balances, next_payout_at(affiliate.program, timezone.now())),
        "payouts": Payout.objects.filter(affiliate=affiliate).order_by("-created_at")[:100],
        "stripe_enabled": stripe_enabled(),
    }
    return render(request, "portal/payouts.html", context)


def _onboarding_link(affiliate: Affiliate) -> str:
    base = settings.BASE_URL
    link = stripe_client().v1.account_links.create(
        params={
            "account": affiliate.stripe_account_id,
            "refresh_url": base + reverse("portal:stripe-refresh"),
            "return_url": base + reverse("portal:stripe-return"),
            "type": "account_onboarding",
        }
    )
    return link.url


@require_POST
@portal_required
def stripe_connect(request: PortalRequest) -> HttpResponse:
    """Create the affiliate's Express account once, then send them through Stripe's onboarding."""
    affiliate = request.affiliate
    if not stripe_enabled():
        messages.error(request, "This program does not pay through Stripe yet.")
        return redirect("portal:payout-settings")
    if affiliate.status != Affiliate.Status.ACTIVE:
        messages.error(request, "Your account must be approved before you connect a payout method.")
        return redirect("portal:payout-settings")
    try:
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
            with transaction.atomic():
                # Only the first account sticks, even if two tabs raced through this view.
                Affiliate.objects.filter(pk=affiliate.pk, stripe_account_id="").update(
                    stripe_account_id=account.id, payout_method=Affiliate.PayoutMethod.STRIPE
                )
                affiliate.refresh_from_db()
                audit_log(
                    actor=Actor(f"affiliate:{affiliate.public_id}"),
                    action="affiliate.stripe_connected",
                    obj=affiliate,
                    data={"account": affiliate.stripe_account_id},
                )
        url = _onboarding_link(affiliate)
    except stripe.StripeError as exc:
        messages.error(
            request,
            f"Stripe could not start the onboarding: {getattr(exc, 'user_message', None) or 'please try again later.'}",
        )
        return redirect("portal:payout-settings")
    return redirect(url)


@require_GET
@portal_required
def stripe_return(request: PortalRequest) -> HttpResponse:
    """Back from Stripe: read the account's state now rather than waiting for account.updated."""
    affiliate = request.affiliate
    if affiliate.stripe_account_id and stripe_enabled():
        try:
            account = stripe_client().v1.accounts.retrieve(affiliate.stripe_account_id)
        except stripe.StripeError:
            messages.warning(
                request, "We could not check your Stripe account just now; it will update shortly."
            )
        else:
            enabled = bool(account.payouts_enabled)
            Affiliate.objects.filter(pk=affiliate.pk).update(
                stripe_payouts_enabled=enabled, payout_method=Affiliate.PayoutMethod.STRIPE
            )
            if enabled:
                messages.success(request, "Your Stripe account is connected: payouts will go there.")
            else:
                messages.warning(
                    request,
                    "Stripe still needs some details before it can pay you. Continue the onboarding to finish.",
                )
    return redirect("portal:payout-settings")


@require_GET
@portal_required
def stripe_refresh(request: PortalRequest) -> HttpResponse:
    """Stripe's link expired or was reused: hand out a fresh one."""
    affiliate = request.affiliate
    if not (affiliate.stripe_account_id and stripe_enabled()):
        return redirect("portal:payout-settings")
    try:
        return redirect(_onboarding_link(affiliate))
    except stripe.StripeError:
        messages.error(request, "Stripe could not continue the onboarding; please try again later.")
        return redirect("portal:payout-settings")
