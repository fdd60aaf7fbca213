"""Refer-a-friend for customers: the public page where a customer asks for their referral link by
email, and the page the emailed link opens (their link, code and rewards).

The request answers the same for every address (the worker decides whether to send); the link
page only shows what the referrer shares anyway and signs nobody in (affiliates/referrers.py).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from affiliates.models import Program
from affiliates.referrers import referrer_by_link, referrer_link_request
from commissions.models import Commission
from payouts.models import CustomerCredit
from refapp import ratelimit
from refapp.hashing import client_ip, email_hash
from refapp.htmx import render_page

from ..forms import LoginForm

REQUEST_LIMIT = 5
REQUEST_WINDOW = 15 * 60


@require_http_methods(["GET", "POST"])
def request_link(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_object_or_404(Program, slug=slug, customer_referrals=True)
    form = LoginForm(request.POST or None)
    limited = False
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        limited = not (
            ratelimit.hit("refer-ip", client_ip(request), limit=REQUEST_LIMIT, window=REQUEST_WINDOW)
            and ratelimit.hit("refer-email", email_hash(email), limit=REQUEST_LIMIT, window=REQUEST_WINDOW)
        )
        if not limited:
            referrer_link_request(program=program, email=email, now=timezone.now())
            return redirect(f"{reverse('refer:request', args=[program.slug])}?sent=1")
    context = {
        "program": program,
        "form": form,
        "limited": limited,
        "sent": request.method == "GET" and request.GET.get("sent") == "1",
    }
    return render_page(request, "refer/request.html", context, status=429 if limited else 200)


@require_GET
def page(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    program = get_object_or_404(Program, slug=slug)
    referrer = referrer_by_link(program=program, token=token, now=timezone.now())
    if referrer is None:
        return render_page(request, "refer/page.html", {"program": program, "invalid": True}, status=400)
    rewards = (
        Commission.objects.filter(affiliate=referrer, livemode=True, kind=Commission.Kind.COMMISSION)
        .select_related("event")
        .order_by("-created_at")[:50]
    )
    credits = CustomerCredit.objects.filter(affiliate=referrer).order_by("-created_at")[:50]
    context = {
        "program": program,
        "referrer": referrer,
        "links": referrer.links(),
        "rewards": rewards,
        "credits": credits,
    }
    response = render_page(request, "refer/page.html", context)
    response["Referrer-Policy"] = "no-referrer"  # the token is in this page's address
    return response
