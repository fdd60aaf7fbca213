"""Portal: magic-link sign-in and out, and switching between the programs of one email.

Emailed links open a confirm page and are used by its POST, not by the GET: mail scanners
(Outlook Safe Links, corporate proxies) fetch every link in an email, and a GET that consumed the
token would burn it before the affiliate ever clicked.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from affiliates.access import PORTAL_AFFILIATE, PORTAL_EMAIL
from affiliates.magic import link_consume, send_login_link
from affiliates.models import Affiliate, MagicLink
from affiliates.portal_services import link_usable
from refapp import ratelimit
from refapp.hashing import client_ip, email_hash
from refapp.htmx import render_page

from ..access import PortalRequest, portal_affiliates, portal_required
from ..forms import LoginForm
from ..signin import LINK_USE_LIMIT, portal_sign_in

# Sign-in emails: at most 5 per 15 minutes per address and per client IP.
LOGIN_EMAIL_LIMIT = 5
LOGIN_WINDOW = 15 * 60


def safe_next(value: str) -> str:
    """A path inside the portal to return to after sign-in, or "" for anything else."""
    if (
        value.startswith("/portal/")
        and "\\" not in value
        and url_has_allowed_host_and_scheme(value, allowed_hosts=None)
    ):
        return value
    return ""


@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    next_path = safe_next(request.POST.get("next") or request.GET.get("next") or "")
    if request.method == "GET" and portal_affiliates(request).exists():
        return redirect(next_path or "portal:dashboard")
    form = LoginForm(request.POST or None, initial={"next": next_path})
    limited = False
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        limited = not (
            ratelimit.hit("portal-login-ip", client_ip(request), limit=LOGIN_EMAIL_LIMIT, window=LOGIN_WINDOW)
            and ratelimit.hit(
                "portal-login-email", email_hash(email), limit=LOGIN_EMAIL_LIMIT, window=LOGIN_WINDOW
            )
        )
        if not limited:
            # The same redirect whether or not the email is an affiliate's: no account enumeration.
            send_login_link(email=email, now=timezone.now(), next_path=next_path)
            return redirect(f"{reverse('portal:login')}?sent=1")
    context = {
        "form": form,
        "limited": limited,
        "window_minutes": LOGIN_WINDOW // 60,
        "sent": request.method == "GET" and request.GET.get("sent") == "1",
    }
    return render_page(request, "portal/login.html", context, status=429 if limited else 200)


def _link_invalid(request: HttpRequest) -> HttpResponse:
    return render_page(request, "portal/magic.html", {"invalid": True, "form": LoginForm()}, status=400)


@require_http_methods(["GET", "POST"])
def magic(request: HttpRequest, token: str) -> HttpResponse:
    now = timezone.now()
    next_path = safe_next(request.GET.get("next", ""))
    if request.method == "GET":
        if not link_usable(token=token, purpose=MagicLink.Purpose.LOGIN, now=now):
            return _link_invalid(request)
        return render_page(request, "portal/magic.html", {"invalid": False})
    if not ratelimit.hit("portal-link-use", client_ip(request), limit=LINK_USE_LIMIT, window=LOGIN_WINDOW):
        return render_page(request, "portal/magic.html", {"invalid": False, "limited": True}, status=429)
    link = link_consume(token=token, purpose=MagicLink.Purpose.LOGIN, now=now)
    # The account may have been rejected since the link was sent.
    if (
        link is None
        or not Affiliate.objects.filter(email=link.email, livemode=True)
        .exclude(status=Affiliate.Status.REJECTED)
        .exists()
    ):
        return _link_invalid(request)
    portal_sign_in(request, email=link.email, now=now)
    return redirect(next_path or "portal:dashboard")


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    # Only the portal keys: a staff user signed in to the panel in the same browser stays signed in.
    request.session.pop(PORTAL_EMAIL, None)
    request.session.pop(PORTAL_AFFILIATE, None)
    request.session.cycle_key()
    messages.info(request, "You are signed out.")
    return redirect("portal:login")


@require_http_methods(["GET", "POST"])
@portal_required
def switch(request: PortalRequest, slug: str) -> HttpResponse:
    """Show another program of the same email (the navigation links here)."""
    membership = next((m for m in request.memberships if m.program.slug == slug), None)
    if membership is None:
        raise Http404("Not one of your programs")
    request.session[PORTAL_AFFILIATE] = membership.pk
    return redirect("portal:dashboard")
