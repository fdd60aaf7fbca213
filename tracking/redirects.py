"""Redirect links `GET /go/<program>/<code>[/<path>]`: the click they record and the
answer that sends the visitor on to the merchant's site.

`go_redirect` is the whole answer. The Django view (`tracking/views/public.py` `go`) and the WSGI
fast path (`refapp/fastpath.py`) both call it, so the click row and the redirect are the same
whichever door the request came through. It answers a `GoAnswer`, not a Django response: the view
turns it into one, the fast path sends its headers as they are (building an HttpResponseRedirect,
its header dict and its checks, was about a tenth of a link's CPU in the fast path).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote_plus, urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import DisallowedRedirect
from django.http import HttpResponseRedirect
from django.utils.encoding import iri_to_uri
from django.utils.http import MAX_URL_REDIRECT_LENGTH

from . import lookup
from .services import click_record, is_bot, new_visitor_id

# The link's path after the leading slash, as the URLconf routes it (refapp/urls.py) and the fast
# path matches it: one pattern, so both doors take the same paths.
GO_PATH = r"^go/(?P<program_slug>[a-z0-9-]+)/(?P<code>[A-Za-z0-9_-]+)(?:/(?P<path>.*))?$"
GO_PATH_RE = re.compile(GO_PATH)
# What every link's 302 carries besides its Location, in the order the view's response has them.
_CACHE_CONTROL = "no-store"
_REFERRER_POLICY = "no-referrer-when-downgrade"
# What iri_to_uri() leaves as it is (its safe characters, and letters, digits and "_.-~"): the usual
# location, built from an ASCII website and an encoded query, needs no quote(), which cost 1.3 µs.
_URI = re.compile(r"[A-Za-z0-9_.~\-/#%\[\]=:;$&()+,!?*@']*")


@dataclass(frozen=True, slots=True)
class GoAnswer:
    """The 302 of a redirect link: `location` as built (an IRI); `response()` for Django,
    `headers()` for a WSGI answer with an empty body. Both carry the same headers."""

    location: str

    def response(self) -> HttpResponseRedirect:
        response = HttpResponseRedirect(self.location)
        response["Cache-Control"] = _CACHE_CONTROL
        response["Referrer-Policy"] = _REFERRER_POLICY
        return response

    def uri(self) -> str:
        """The Location header's value: the location as a URI, as HttpResponseRedirect sends it."""
        return self.location if _URI.fullmatch(self.location) else iri_to_uri(self.location)

    def headers(self) -> list[tuple[str, str]]:
        """The answer's headers; the fast path keeps the others (never the Location) per scheme
        (refapp.fastpath, _Middleware.go_headers), so a header added here must not vary per link."""
        return [
            ("Content-Type", f"text/html; charset={settings.DEFAULT_CHARSET}"),
            ("Location", self.uri()),
            ("Cache-Control", _CACHE_CONTROL),
            ("Referrer-Policy", _REFERRER_POLICY),
            ("Content-Length", "0"),
        ]


# What quote_plus() leaves as it is: most names and values of a link (utm fields, codes, visitor
# ids) need no encoding, and a match costs a tenth of quote_plus().
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")


def _encoded(value: str) -> str:
    return value if _PLAIN.fullmatch(value) else quote_plus(value)


def _query(params: list[tuple[str, str]]) -> str:
    """urlencode(params), the same string for the str pairs a link has."""
    return "&".join(f"{_encoded(name)}={_encoded(value)}" for name, value in params)


def _parsed(params: list[tuple[str, str]]) -> dict[str, list[str]]:
    """parse_qs(_query(params)): what the click's row reads (its utm fields) from the location's
    query, without parsing back what was just encoded (5 µs of a /go/ link). Only when the path
    holds no "?" or "#", which would move where the location's query starts."""
    parsed: dict[str, list[str]] = {}
    for name, value in params:
        if value:  # parse_qs drops blank values
            parsed.setdefault(name, []).append(value)
    return parsed


def _allowed(scheme: str, location: str) -> str:
    """HttpResponseRedirect's own refusals, checked before a click is stored: a location longer
    than Django redirects to, or of a scheme it will not send a browser to (the program's website
    is a URLField, which admits ftps:// and others; its scheme is the location's). Django answers
    DisallowedRedirect with a 400."""
    if len(location) > MAX_URL_REDIRECT_LENGTH:
        raise DisallowedRedirect(f"Unsafe redirect exceeding {MAX_URL_REDIRECT_LENGTH} characters")
    if scheme and scheme not in HttpResponseRedirect.allowed_schemes:
        raise DisallowedRedirect(f"Unsafe redirect to URL with protocol '{scheme}'")
    return location


def go_redirect(
    *,
    program_slug: str,
    code: str,
    path: str,
    params: Iterable[tuple[str, str]],
    user_agent: str,
    referrer: str,
    ip: str,
    country: str,
    now: datetime,
) -> GoAnswer | None:
    """Record the click of a redirect link and answer the 302, or None for an unknown program.

    `params` are the link's query parameters (one value per name, as `QueryDict.items()` gives
    them); they are passed on to the site, apart from `ref` and `refapp_vid`, which the link sets.
    An unknown or inactive code still lands the visitor on the merchant's site without a click: never
    a dead link. A bot is redirected without a click; over the sender's rate limit too.
    """
    program = lookup.program_by_slug(program_slug)
    if program is None:
        return None
    target = urlsplit(program.website)
    target_path = "/" + path.lstrip("/") if path else (target.path or "/")
    params = [(k, v) for k, v in params if k not in {"ref", "refapp_vid"}]
    affiliate = lookup.active_affiliate_by_code(program, code)
    visitor_id = ""
    if affiliate is not None:
        visitor_id = new_visitor_id()
        params += [("ref", affiliate[1]), ("refapp_vid", visitor_id)]
    # Checked before the click is stored: a website whose scheme may not be redirected to raises
    # here (DisallowedRedirect, a 400) without a click.
    query = _query(params)
    location = _allowed(target.scheme, urlunsplit((target.scheme, target.netloc, target_path, query, "")))
    if affiliate is not None and not is_bot(user_agent):
        # Over the sender's rate limit the visitor is still redirected; the click is not stored.
        click_record(
            query=_parsed(params) if "?" not in target_path and "#" not in target_path else None,
            limit="go",
            program=program,
            affiliate_id=affiliate[0],
            visitor_id=visitor_id,
            url=location,
            referrer=referrer,
            user_agent=user_agent,
            ip=ip,
            country=country,
            source="link",
            now=now,
        )
    return GoAnswer(location)
