"""The tracker bundle (`/t.js`), its answer, its versioned URL and the tag a site owner pastes.

Ground floor: it imports no app, so the tracking view that serves the script, the WSGI fast path
that answers it before Django, the panel that shows the tag and `createprogram` that prints it all
build them the same way. It takes plain values (a slug, the extra parameter names, the cookie
lifetime, request header values), never a Program or a request.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from collections.abc import Iterable
from pathlib import Path

import brotli
import rjsmin
from django.conf import settings
from django.utils.html import escape

TRACKER_SOURCE = Path(__file__).resolve().parent.parent / "static" / "tracker" / "tracker.js"

# What the script assumes when the tag has no data-cookie-days, and the Program default. The tag
# leaves the attribute out at this value, so this number must never change in the script alone.
DEFAULT_COOKIE_DAYS = 30


@functools.cache
def tracker_bundle() -> tuple[bytes, str]:
    """The minified tracker and its content hash, built once per process from the readable source."""
    minified = rjsmin.jsmin(TRACKER_SOURCE.read_text()).encode()
    return minified, hashlib.sha256(minified).hexdigest()[:12]


def tracker_url(base_url: str | None = None) -> str:
    """The snippet's src: a content-hash query busts caches whenever the tracker changes."""
    base = settings.BASE_URL if base_url is None else base_url
    return f"{base}/t.js?v={tracker_bundle()[1]}"


def tracker_snippet(
    *,
    slug: str,
    params: Iterable[str] = (),
    cookie_days: int = DEFAULT_COOKIE_DAYS,
    base_url: str | None = None,
) -> str:
    """The `<script>` tag for a program: `data-params` when it reads extra parameter names besides
    `ref`, `data-cookie-days` when its cookie lifetime is not the script's default of 30 days."""
    attrs = [("src", tracker_url(base_url)), ("data-program", slug)]
    extra = [p for p in dict.fromkeys(p.strip() for p in params) if p and p != "ref"]
    if extra:
        attrs.append(("data-params", ",".join(extra)))
    if cookie_days != DEFAULT_COOKIE_DAYS:
        attrs.append(("data-cookie-days", str(int(cookie_days))))
    return "<script async" + "".join(f' {name}="{escape(value)}"' for name, value in attrs) + "></script>"


# What the script is stored in, in the order a coding is chosen when the client accepts several:
# Brotli is smaller than gzip for the same script, and every browser that sends "br" decodes it.
CODINGS = ("br", "gzip", "identity")
CONTENT_TYPE = "application/javascript; charset=utf-8"


@functools.cache
def _variants() -> dict[tuple[str, bool], tuple[bytes, str, list[tuple[str, str]], list[tuple[str, str]]]]:
    """{(coding, versioned): (body, ETag, headers of the 200, headers of the 304)}, compressed and
    written once per process.

    Each coding has its own strong ETag (`"<hash>"`, `"<hash>-gz"`, `"<hash>-br"`): the three are
    different byte sequences, and a strong validator names one sequence (RFC 9110 8.8.3). One weak
    ETag for all three would do for If-None-Match too, but a cache holding two codings could then not
    tell from a 304 which of them it validated. The identity ETag is the one served before
    compression existed, so caches holding the plain script still revalidate with a 304.
    gzip's header carries no time (mtime=0), so every process builds the same bytes and ETag.
    """
    minified, digest = tracker_bundle()
    bodies = {
        "br": (brotli.compress(minified, quality=11), f'"{digest}-br"'),
        "gzip": (gzip.compress(minified, compresslevel=9, mtime=0), f'"{digest}-gz"'),
        "identity": (minified, f'"{digest}"'),
    }
    out = {}
    for coding, (body, etag) in bodies.items():
        for versioned in (True, False):
            if versioned:
                cache_control = "public, max-age=31536000, immutable"
            else:
                # The unversioned URL in pasted snippets: short cache so tracker fixes reach every
                # site within the hour, with stale-while-revalidate so no visitor ever waits on a
                # revalidation.
                cache_control = "public, max-age=3600, stale-while-revalidate=86400"
            headers = [("Content-Type", CONTENT_TYPE)]
            if coding != "identity":
                headers.append(("Content-Encoding", coding))
            headers += [
                # A 304 and a HEAD say the length a 200 to the same request would have (RFC 9110
                # 8.6 allows exactly that value and no other).
                ("Content-Length", str(len(body))),
                ("ETag", etag),
                ("Cache-Control", cache_control),
                ("Vary", "Accept-Encoding"),
                ("Access-Control-Allow-Origin", "*"),
                ("Cross-Origin-Resource-Policy", "cross-origin"),
            ]
            # The 304 carries what the 200 would have said about caching, not its Content-Type (as
            # Django's HttpResponseNotModified) nor its Content-Encoding: there is no content.
            not_modified = [h for h in headers if h[0] not in ("Content-Type", "Content-Encoding")]
            out[coding, versioned] = (body, etag, headers, not_modified)
    return out


@functools.lru_cache(maxsize=256)
def accepted_coding(accept_encoding: str) -> str:
    """The coding to send for an Accept-Encoding value: br, else gzip, else identity.

    The server's order decides among acceptable codings (q only says acceptable or not): every
    browser accepts both and weighs them equally. `q=0` refuses a coding, `*` stands for codings not
    named, `x-gzip` is gzip (RFC 9110 12.5.3). Identity is sent even when refused (`identity;q=0`):
    a script the client may not decode is no better than one it did not ask for in that form.
    Remembered per header value: browsers send a handful of distinct strings.
    """
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        name = name.strip().lower()
        if not name:
            continue
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0  # an unreadable weight accepts nothing
        weights["gzip" if name == "x-gzip" else name] = weight
    for coding in CODINGS[:-1]:
        if weights.get(coding, weights.get("*", 0.0)) > 0:
            return coding
    return "identity"


def _none_match(if_none_match: str, etag: str) -> bool:
    """If-None-Match holds `*` or this ETag (weak comparison, as RFC 9110 13.1.2 asks)."""
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def tracker_answer(
    *, head: bool, version: str | None, accept_encoding: str, if_none_match: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of `GET` or `HEAD /t.js`, from the request's `v` query value and its
    Accept-Encoding and If-None-Match headers (empty when absent).

    The Django view `tracker_js` and the WSGI fast path (refapp/fastpath.py) both answer with this,
    so the script, its codings and validators are chosen in one place. The headers are the view's
    own; Django's middleware adds the security headers, and the fast path adds the same ones.
    """
    body, etag, headers, not_modified = _variants()[
        accepted_coding(accept_encoding), version == tracker_bundle()[1]
    ]
    if if_none_match and _none_match(if_none_match, etag):
        return 304, not_modified, b""
    return 200, headers, b"" if head else body
