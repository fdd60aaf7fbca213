"""Public join flow: application form → emailed verification link → pending (or active) affiliate."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from affiliates.access import PORTAL_EMAIL
from affiliates.models import Affiliate, Program
from affiliates.portal_services import (
    Application,
    InvalidJoinLink,
    join_application_start,
    join_application_verify,
    join_link_usable,
)
from affiliates.services import Conflict
from refapp import ratelimit
from refapp.hashing import client_ip, email_hash
from refapp.htmx import render_page

from ..figures import commission_terms
from ..forms import JoinForm
from ..signin import LINK_USE_LIMIT, portal_sign_in

# Applications: 10 an hour per client IP, and 3 an hour per email (nobody is mail-bombed).
APPLY_IP_LIMIT = 10
APPLY_EMAIL_LIMIT = 3
APPLY_WINDOW = 60 * 60
JOINED = "join_verified_affiliate"  # session: the membership this browser just verified


@require_http_methods(["GET", "POST"])
def apply(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_object_or_404(Program, slug=slug)
    form = JoinForm(request.POST or None, program=program)
    limited = False
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        limited = not (
            ratelimit.hit("join-ip", client_ip(request), limit=APPLY_IP_LIMIT, window=APPLY_WINDOW)
            and ratelimit.hit(
                "join-email", email_hash(data["email"]), limit=APPLY_EMAIL_LIMIT, window=APPLY_WINDOW
            )
        )
        if not limited:
            # A known email gets a sign-in link instead, and the visitor the same page either way.
            join_application_start(
                program=program,
                application=Application(
                    name=data["name"].strip(),
                    email=data["email"],
                    website=data.get("website", ""),
                    promotion=data.get("promotion", "").strip(),
                    terms_accepted=bool(data.get("accept_terms")),
                ),
                now=timezone.now(),
            )
            return redirect("join:thanks", slug=program.slug)
    context = {"program": program, "form": form, "limited": limited, "terms": commission_terms(program)}
    return render_page(request, "join/apply.html", context, status=429 if limited else 200)


@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest, slug: str, token: str) -> HttpResponse:
    program = get_object_or_404(Program, slug=slug)
    now = timezone.now()
    if request.method == "GET":
        usable = join_link_usable(program=program, signed=token, now=now)
        return render_page(
            request,
            "join/verify.html",
            {"program": program, "invalid": not usable},
            status=200 if usable else 400,
        )
    if not ratelimit.hit("join-link-use", client_ip(request), limit=LINK_USE_LIMIT, window=15 * 60):
        context = {"program": program, "invalid": False, "limited": True}
        return render_page(request, "join/verify.html", context, status=429)
    try:
        affiliate = join_application_verify(program=program, signed=token, now=now)
    except InvalidJoinLink:
        return render_page(request, "join/verify.html", {"program": program, "invalid": True}, status=400)
    except Conflict:  # a concurrent application took the generated code: the link is still unused
        context = {"program": program, "invalid": False, "retry": True}
        return render_page(request, "join/verify.html", context, status=409)
    # Clicking the emailed link proved the address, exactly as a sign-in link does: sign them in.
    if affiliate.status != Affiliate.Status.REJECTED:
        portal_sign_in(request, email=affiliate.email, now=now, affiliate=affiliate)
    request.session[JOINED] = affiliate.pk
    return redirect("join:thanks", slug=program.slug)


@require_GET
def thanks(request: HttpRequest, slug: str) -> HttpResponse:
    """After applying: "check your email"; after verifying: received, or welcome when approved."""
    program = get_object_or_404(Program, slug=slug)
    joined = None
    if request.session.get(JOINED):
        joined = Affiliate.objects.filter(
            pk=request.session[JOINED], program=program, email=request.session.get(PORTAL_EMAIL, "")
        ).first()
    return render_page(request, "join/thanks.html", {"program": program, "joined": joined})
