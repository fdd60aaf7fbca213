"""Portal: payout settings (PayPal, or Stripe Connect onboarding) and the affiliate's profile."""

from __future__ import annotations

import stripe
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from affiliates.models import Affiliate
from affiliates.portal_services import affiliate_actor, affiliate_payout_paypal_set, affiliate_profile_update
from payouts.connect import (
    ConnectNotAllowed,
    connect_onboarding_link,
    connect_onboarding_returned,
    connect_onboarding_start,
)
from payouts.stripe_client import stripe_enabled
from refapp.htmx import render_page

from ..access import PortalRequest, portal_required
from ..forms import PayoutSettingsForm, ProfileForm


@require_http_methods(["GET", "POST"])
@portal_required
def payout_settings(request: PortalRequest) -> HttpResponse:
    affiliate = request.affiliate
    form = PayoutSettingsForm(
        request.POST or None, initial={"paypal_email": affiliate.paypal_email or affiliate.email}
    )
    if request.method == "POST" and form.is_valid():
        affiliate_payout_paypal_set(affiliate=affiliate, paypal_email=form.cleaned_data["paypal_email"])
        messages.success(request, "Saved: you will be paid by PayPal.")
        return redirect("portal:payout-settings")
    context = {"affiliate": affiliate, "form": form, "stripe_enabled": bool(settings.STRIPE_SECRET_KEY)}
    return render_page(request, "portal/payout_settings.html", context)


@require_http_methods(["GET", "POST"])
@portal_required
def profile(request: PortalRequest) -> HttpResponse:
    affiliate = request.affiliate
    # The form validates against a copy so that a rejected edit never shows up elsewhere on the page.
    draft = Affiliate(
        program=affiliate.program,
        name=affiliate.name,
        website=affiliate.website,
        promotion=affiliate.promotion,
    )
    form = ProfileForm(request.POST or None, instance=draft)
    if request.method == "POST" and form.is_valid():
        affiliate_profile_update(
            affiliate=affiliate,
            name=form.cleaned_data["name"],
            website=form.cleaned_data["website"].strip(),
            promotion=form.cleaned_data["promotion"].strip(),
        )
        messages.success(request, "Your profile is saved.")
        return redirect("portal:profile")
    return render_page(request, "portal/profile.html", {"affiliate": affiliate, "form": form})


def _onboarding_urls(request: PortalRequest) -> dict[str, str]:
    base = settings.BASE_URL
    return {
        "return_url": base + reverse("portal:stripe-return"),
        "refresh_url": base + reverse("portal:stripe-refresh"),
    }


@require_POST
@portal_required
def stripe_connect(request: PortalRequest) -> HttpResponse:
    """Create the affiliate's Express account once, then send them through Stripe's onboarding."""
    affiliate = request.affiliate
    if not stripe_enabled():
        messages.error(request, "This program does not pay through Stripe yet.")
        return redirect("portal:payout-settings")
    try:
        url = connect_onboarding_start(
            affiliate=affiliate, actor=affiliate_actor(affiliate), **_onboarding_urls(request)
        )
    except ConnectNotAllowed as exc:
        messages.error(request, str(exc))
        return redirect("portal:payout-settings")
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
            affiliate = connect_onboarding_returned(affiliate=affiliate, actor=affiliate_actor(affiliate))
        except stripe.StripeError:
            messages.warning(
                request, "We could not check your Stripe account just now; it will update shortly."
            )
        else:
            if affiliate.stripe_payouts_enabled:
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
        return redirect(connect_onboarding_link(affiliate=affiliate, **_onboarding_urls(request)))
    except stripe.StripeError:
        messages.error(request, "Stripe could not continue the onboarding; please try again later.")
        return redirect("portal:payout-settings")
