"""The tracker bundle (`/t.js`), its versioned URL and the tag a site owner pastes, in one place.

Ground floor: it imports no app, so the tracking view that serves the script, the panel that shows
the tag and `createprogram` that prints it all build them the same way. It takes plain values (a
slug, the extra parameter names, the cookie lifetime), never a Program.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

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
