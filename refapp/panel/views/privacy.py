"""Privacy requests from the panel: an affiliate's data (under the affiliate's page) and a referred
customer's (looked up by email or customer id), shown as the JSON export, downloadable, and erased
on an admin's confirmed request. Program admins only: the export is everything stored about a
person. The rows and tombstones are payouts/privacy.py's."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_http_methods

from affiliates.models import Affiliate
from payouts.privacy import Subject, privacy_erase, privacy_export
from refapp.htmx import render_page

from ..access import actor, get_program_for_staff, staff_required
from ..forms import PrivacyEraseForm, PrivacyLookupForm


def _answer(request: HttpRequest, subject: Subject, context: dict, filename: str) -> HttpResponse:
    data = privacy_export(subject)
    if request.GET.get("format") == "json":
        response = JsonResponse(data, json_dumps_params={"indent": 2})
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    return render_page(request, "panel/privacy.html", {**context, "export": json.dumps(data, indent=2)})


@require_http_methods(["GET", "POST"])
@staff_required
def affiliate_privacy(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, admin=True)
    affiliate = get_object_or_404(Affiliate, program=program, livemode=True, public_id=public_id)
    subject = Subject(program=program, livemode=True, affiliate=affiliate)
    form = PrivacyEraseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        privacy_erase(subject=subject, actor=actor(request))
        messages.success(request, "The affiliate's personal data was erased; their money rows are kept.")
        return redirect("panel:affiliate-privacy", program.slug, affiliate.public_id)
    context = {"program": program, "affiliate": affiliate, "erase_form": form}
    return _answer(request, subject, context, f"privacy-{affiliate.public_id}.json")


@require_http_methods(["GET", "POST"])
@staff_required
def customer_privacy(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, admin=True)
    lookup = PrivacyLookupForm(request.GET if request.GET.keys() - {"format"} else None)
    context: dict = {"program": program, "lookup": lookup}
    if not lookup.is_bound or not lookup.is_valid():
        return render_page(request, "panel/privacy.html", context)
    subject = Subject(
        program=program,
        livemode=True,
        email=lookup.cleaned_data["email"],
        customer_id=lookup.cleaned_data["customer_id"],
    )
    form = PrivacyEraseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        privacy_erase(subject=subject, actor=actor(request))
        messages.success(request, "The customer's personal data was erased; orders and amounts are kept.")
        return redirect(request.get_full_path())
    context["erase_form"] = form
    return _answer(request, subject, context, "privacy-customer.json")
