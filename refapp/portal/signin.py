"""Signing an email in to the portal: what the sign-in link and the join verification link share."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest

from affiliates.access import PORTAL_AFFILIATE, PORTAL_EMAIL
from affiliates.models import Affiliate
from affiliates.portal_services import portal_sessions_record
from refapp.hashing import client_ip

# Using emailed links: tokens are 256 random bits, so this only stops a client hammering the endpoint.
LINK_USE_LIMIT = 30


def portal_sign_in(
    request: HttpRequest, *, email: str, now: datetime, affiliate: Affiliate | None = None
) -> None:
    """Sign the email in: a new session key (no fixation), and the sign-in's network remembered."""
    request.session.cycle_key()
    request.session[PORTAL_EMAIL] = email.strip().lower()
    if affiliate is not None:
        request.session[PORTAL_AFFILIATE] = affiliate.pk
    else:
        request.session.pop(PORTAL_AFFILIATE, None)
    portal_sessions_record(email=email, ip=client_ip(request), now=now)
