"""Real headless Chromium against the live refapp server and a separate "merchant" origin.

The merchant pages are plain files served by the standard library on another loopback host
and port, so the tracker runs cross-site exactly as on a customer's website: its own cookie on
the merchant origin, its API calls to the refapp origin.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

# Playwright's sync API keeps an asyncio loop "running" in this thread for as long as the
# session-scoped browser lives, so Django would refuse every ORM call from here on, including
# those of test modules collected after this one. The calls are plain synchronous code.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The server does not count "HeadlessChrome" clicks (bot filter), so look like a desktop browser.
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


def _chromium_path() -> str | None:
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def browser():
    path = _chromium_path()
    if path is None:
        reason = "browser tests need Chromium: /usr/bin/chromium not found and no `chromium` on PATH"
        if os.environ.get("REFAPP_REQUIRE_BROWSER"):
            pytest.fail(reason + " (REFAPP_REQUIRE_BROWSER is set)")
        print(f"\nSKIP: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    """A fresh profile per test: no cookies carried from one test to the next."""
    ctx = browser.new_context(user_agent=DESKTOP_UA)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    # A tracker that throws on the merchant's page is a failure even if nothing else noticed.
    assert errors == [], f"JavaScript errors on the merchant page: {errors}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass  # keep the test output clean


@dataclass
class MerchantSite:
    """A directory of HTML pages on its own origin; `url` has no trailing slash."""

    root: Path
    url: str
    tracker_src: str

    def add_page(self, name: str, body: str = "", **script_attrs: str) -> str:
        """Write `name` with the refapp snippet (data-* attributes from `script_attrs`); return its URL."""
        attrs = "".join(f' data-{key.replace("_", "-")}="{value}"' for key, value in script_attrs.items())
        html = (
            "<!doctype html>\n<html><head><meta charset=utf-8><title>Merchant</title>"
            '<link rel="icon" href="data:,"></head>\n'
            f"<body>\n{body}\n"
            f'<script async src="{self.tracker_src}"{attrs}></script>\n'
            "</body></html>\n"
        )
        (self.root / name).write_text(html)
        return f"{self.url}/{name}"

    def add_page_with_tag(self, name: str, tag: str, body: str = "") -> str:
        """Write `name` with `tag`, the snippet exactly as the panel hands it out; return its URL."""
        html = (
            "<!doctype html>\n<html><head><meta charset=utf-8><title>Merchant</title>"
            '<link rel="icon" href="data:,"></head>\n'
            f"<body>\n{body}\n{tag}\n</body></html>\n"
        )
        (self.root / name).write_text(html)
        return f"{self.url}/{name}"


@pytest.fixture
def merchant_site(live_server, tmp_path) -> Iterator[MerchantSite]:
    # Another host name as well as another port: cross-site, so any cookie the refapp origin
    # tried to set would be a third-party one.
    refapp_host = urlsplit(live_server.url).hostname
    host = "127.0.0.1" if refapp_host == "localhost" else "localhost"
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="merchant-site", daemon=True)
    thread.start()
    try:
        yield MerchantSite(
            root=tmp_path,
            url=f"http://{host}:{server.server_address[1]}",
            tracker_src=f"{live_server.url}/t.js",
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
