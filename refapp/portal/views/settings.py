"""Portal: payout settings (PayPal, or Stripe Connect onboarding) and the affiliate's profile."""

from __future__ import annotations

import stripe
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from affiliates.models import Affiliate, TaxForm, TaxProfile
from affiliates.portal_services import (
    BankDetails,
    affiliate_actor,
    affiliate_payout_bank_set,
    affiliate_payout_paypal_set,
    affiliate_payout_wise_set,
    affiliate_profile_update,
    affiliate_tax_details_set,
)
from payouts.connect import (
    ConnectNotAllowed,
    connect_onboarding_link,
    connect_onboarding_returned,
    connect_onboarding_start,
)
from payouts.stripe_client import stripe_enabled
from refapp.htmx import render_page

from ..access import PortalRequest, portal_required
from ..figures import tax_hold
from ..forms import AchForm, PayoutSettingsForm, ProfileForm, SepaForm, TaxDetailsForm, WiseForm

PAYOUT_FORMS = {"paypal": PayoutSettingsForm, "wise": WiseForm, "sepa": SepaForm, "ach": AchForm}
SAVED = {
    "paypal": "Saved: you will be paid by PayPal.",
    "wise": "Saved: you will be paid through Wise.",
    "sepa": "Saved: you will be paid by bank transfer to your IBAN.",
    "ach": "Saved: you will be paid by bank transfer to your US account.",
}


def _save_payout_method(affiliate: Affiliate, method: str, data: dict) -> None:
    if method == "paypal":
        affiliate_payout_paypal_set(affiliate=affiliate, paypal_email=data["paypal_email"])
    elif method == "wise":
        affiliate_payout_wise_set(affiliate=affiliate, wise_email=data["wise_email"])
    elif method == "sepa":
        details = BankDetails(holder=data["holder"], iban=data["iban"], bic=data["bic"])
        affiliate_payout_bank_set(affiliate=affiliate, details=details)
    else:
        details = BankDetails(
            holder=data["holder"],
            account_number=data["account_number"],
            routing_number=data["routing_number"],
            account_type=data["account_type"],
        )
        affiliate_payout_bank_set(affiliate=affiliate, details=details)


@require_http_methods(["GET", "POST"])
@portal_required
def payout_settings(request: PortalRequest) -> HttpResponse:
    """PayPal, Wise, a SEPA or a US bank account (one form each), and Stripe Connect. Saved bank
    numbers are shown masked and never put back into a form."""
    affiliate = request.affiliate
    method = request.POST.get("method", "paypal") if request.method == "POST" else ""
    if method not in PAYOUT_FORMS:
        method = "paypal"  # the PayPal form of older pages posts no method
    initial = {
        "paypal": {"paypal_email": affiliate.paypal_email or affiliate.email},
        "wise": {"wise_email": affiliate.wise_email or affiliate.email},
    }
    forms = {
        name: form_class(
            request.POST if request.method == "POST" and name == method else None, initial=initial.get(name)
        )
        for name, form_class in PAYOUT_FORMS.items()
    }
    if request.method == "POST":
        form = forms[method]
        if form.is_valid():
            try:
                _save_payout_method(affiliate, method, form.cleaned_data)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, SAVED[method])
                return redirect("portal:payout-settings")
    context = {
        "affiliate": affiliate,
        "form": forms["paypal"],
        "wise_form": forms["wise"],
        "sepa_form": forms["sepa"],
        "ach_form": forms["ach"],
        "stripe_enabled": bool(settings.STRIPE_SECRET_KEY),
    }
    return render_page(request, "portal/payout_settings.html", context)


@require_http_methods(["GET", "POST"])
@portal_required
def tax_details(request: PortalRequest) -> HttpResponse:
    """Legal name, country, business or not, tax id, and the W-9/W-8 file for US programs."""
    affiliate = request.affiliate
    profile = TaxProfile.objects.filter(affiliate=affiliate).first()
    has_form = TaxForm.objects.filter(affiliate=affiliate).exists()
    # A saved tax id is never sent back into the form: the page shows it masked.
    initial = (
        {
            "legal_name": profile.legal_name,
            "country": profile.country,
            "is_business": profile.is_business,
            "form_type": profile.form_type,
        }
        if profile
        else {}
    )
    form = TaxDetailsForm(request.POST or None, request.FILES or None, initial=initial, has_form=has_form)
    if request.method == "POST" and form.is_valid():
        try:
            affiliate_tax_details_set(
                affiliate=affiliate,
                details=form.details(),
                upload=form.cleaned_data["form_file"],
                now=timezone.now(),
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, "Your tax details are saved.")
            return redirect("portal:tax-details")
    context = {
        "affiliate": affiliate,
        "program": affiliate.program,
        "profile": profile,
        "has_form": has_form,
        "form": form,
        "tax_hold": tax_hold(affiliate),
    }
    return render_page(request, "portal/tax_details.html", context)


def _add_errors(form, exc: ValidationError) -> None:
    """The service's own check failed (it re-validates what the form checked): show it on the form."""
    pairs = exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]
    for field, errors in pairs:
        form.add_error(field if field in form.fields else None, errors)


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
