"""/api/v1/docs in a real Chromium: the vendored Redoc renders the OpenAPI document's operations
under the page's own CSP (a violation is a console error, and fails the test). One violation is
wanted: Redoc's "API docs by Redocly" badge loads its logo from Redocly's CDN, which the CSP blocks, so
the page makes no third-party request."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_api_docs_render_the_operations_with_redoc(page, live_server):
    console_errors: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and console_errors.append(msg.text))
    failed: list[str] = []
    page.on("response", lambda r: r.status >= 400 and "/favicon" not in r.url and failed.append(r.url))
    outside: list[str] = []
    # completed requests (a CSP-blocked one fails) to anywhere but refapp (blob: is Redoc's worker)
    page.on(
        "requestfinished",
        lambda r: not r.url.startswith((live_server.url, "blob:")) and outside.append(r.url),
    )

    page.goto(f"{live_server.url}/api/v1/docs")

    # Redoc's menu and operation headings, built from /api/v1/openapi.json in the browser
    expect(page.locator("h1", has_text="refapp API")).to_be_visible(timeout=30_000)
    expect(page.locator("h2", has_text="Report a conversion").first).to_be_visible()
    expect(page.locator(".menu-content")).to_contain_text("Create an affiliate.")
    expect(page.locator("h2", has_text="Create an affiliate.")).to_be_visible()
    assert page.locator("noscript").count() == 1  # the server-side rendering is only the fallback
    failed = [url for url in failed if not url.endswith("/favicon.ico")]
    unexpected = [e for e in console_errors if "cdn.redoc.ly" not in e and "Failed to load resource" not in e]
    assert unexpected == [] and failed == [] and outside == [], (console_errors, failed, outside)
