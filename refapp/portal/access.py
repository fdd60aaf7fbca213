"""Who may see what in the portal: the signed-in email and the program membership it is viewing."""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from affiliates.access import PORTAL_AFFILIATE, PORTAL_EMAIL
from affiliates.models import Affiliate


class PortalRequest(HttpRequest):
    affiliate: Affiliate
    memberships: list[Affiliate]


def portal_affiliates(request: HttpRequest) -> QuerySet[Affiliate]:
    """Every program membership of the signed-in email (an affiliate can be in several programs).
    Live affiliates only: a test affiliate is API test data, not a person who joined."""
    email = request.session.get(PORTAL_EMAIL)
    if not email:
        return Affiliate.objects.none()
    return (
        Affiliate.objects.filter(email=email, livemode=True)
        .exclude(status=Affiliate.Status.REJECTED)
        .select_related("program")
    )


def portal_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Portal views: a signed-in affiliate, set as `request.affiliate` (the program being viewed)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        memberships = list(portal_affiliates(request))
        if not memberships:
            request.session.pop(PORTAL_EMAIL, None)
            return redirect(f"{reverse('portal:login')}?{urlencode({'next': request.get_full_path()})}")
        current = next(
            (a for a in memberships if a.pk == request.session.get(PORTAL_AFFILIATE)), memberships[0]
        )
        request.session[PORTAL_AFFILIATE] = current.pk
        request.affiliate = current  # type: ignore[attr-defined]
        request.memberships = memberships  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper
