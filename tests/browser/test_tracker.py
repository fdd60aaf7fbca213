"""The tracker (/t.js) in a real Chromium on a merchant origin, against the live refapp server.

Each test drives the whole path a customer's browser takes: the merchant page loads the script
cross-site, the script keeps its first-party cookie and reports the click, and the merchant's
backend later reports the sale with the visitor id the script handed out.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from affiliates.services import apikey_create
from commissions.models import Commission
from refapp.tracker import tracker_snippet
from tests.factories import AffiliateFactory, CommissionRuleFactory, ProgramFactory
from tracking.models import Click

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLICK_PATH = "/api/v1/track/click"
# The shape the tracker promises: 22+ characters a Stripe client_reference_id accepts.
VISITOR_ID_RE = re.compile(r"[A-Za-z0-9_-]{22,64}")

FORM_AND_LINKS = """
<form data-refapp id="signup" method="post" action="/signup"><input name="email"></form>
<form id="search"><input name="q"></form>
<a id="plink" href="https://buy.stripe.com/test_28o5lq">Buy</a>
<a id="checkout" href="https://checkout.stripe.com/c/pay/cs_test_1?client_reference_id=merchant-own">Pay</a>
<a id="other" href="https://example.org/pricing">Pricing</a>
"""


def poll(fn: Callable[[], Any], *, timeout: float = 5.0) -> Any:
    """fn() once it is truthy, or its last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.05)


def is_click_api(response_or_request) -> bool:
    return response_or_request.url.endswith(CLICK_PATH)


def visit_and_wait_for_click(page, url: str) -> None:
    """Open `url` and wait until the server has answered the tracker's click report."""
    with page.expect_response(is_click_api, timeout=10_000) as info:
        page.goto(url)
    assert info.value.status == 202, info.value.status


def visitor_id(page) -> str:
    page.wait_for_function("window.refapp && window.refapp.visitorId", timeout=10_000)
    return page.evaluate("window.refapp.visitorId")


def merchant_cookies(context, merchant_site) -> dict[str, dict]:
    return {c["name"]: c for c in context.cookies(merchant_site.url)}


def click_requests(page) -> list[str]:
    """A live list of the click reports the page sends from now on."""
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url) if is_click_api(request) else None)
    return sent


def post_event(live_server, secret: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/events",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def program(merchant_site):
    return ProgramFactory(slug="acme", name="Acme", website=f"{merchant_site.url}/", cookie_days=30)


@pytest.fixture
def affiliate(program):
    return AffiliateFactory(program=program, code="JOHN", status="active", email="john@example.com")


@pytest.mark.parametrize(
    ("query", "script_attrs"),
    [("ref=JOHN", {}), ("via=JOHN", {"params": "via,aff"})],
    ids=["ref", "extra-param"],
)
def test_referred_visit_sets_first_party_cookie_and_records_one_click(
    page, context, live_server, merchant_site, affiliate, query, script_attrs
):
    url = merchant_site.add_page("landing.html", program="acme", **script_attrs) + f"?{query}&utm_source=news"

    visit_and_wait_for_click(page, url)
    vid = visitor_id(page)

    assert VISITOR_ID_RE.fullmatch(vid)
    cookie = merchant_cookies(context, merchant_site)["refapp_vid"]
    assert cookie["value"] == vid
    assert cookie["path"] == "/" and cookie["sameSite"] == "Lax" and not cookie["httpOnly"]
    expected_expiry = datetime.now(UTC) + timedelta(days=30)
    assert abs(cookie["expires"] - expected_expiry.timestamp()) < 3600
    assert merchant_cookies(context, merchant_site)["refapp_ref"]["value"] == "JOHN"
    # First-party only: the refapp origin got no cookie out of the visit.
    assert context.cookies(live_server.url) == []
    assert page.evaluate("window.refapp.referral") == "JOHN"

    assert poll(lambda: Click.objects.filter(affiliate=affiliate, visitor_id=vid).exists())
    page.wait_for_load_state("networkidle")
    click = Click.objects.get()  # exactly one, for this affiliate and visitor
    assert (click.affiliate_id, click.visitor_id) == (affiliate.pk, vid)
    assert click.landing_url == url
    assert click.utm_source == "news"


def test_forms_and_stripe_links_carry_the_visitor_id(page, merchant_site, affiliate):
    url = merchant_site.add_page("pricing.html", body=FORM_AND_LINKS, program="acme")

    visit_and_wait_for_click(page, f"{url}?ref=JOHN")
    vid = visitor_id(page)

    assert page.eval_on_selector("#signup input[name=refapp_vid]", "e => [e.type, e.value]") == [
        "hidden",
        vid,
    ]
    assert page.locator("#search input[name=refapp_vid]").count() == 0
    assert (
        page.get_attribute("#plink", "href")
        == f"https://buy.stripe.com/test_28o5lq?client_reference_id={vid}"
    )
    # A merchant that set its own client_reference_id keeps it; other links are left alone.
    assert "client_reference_id=merchant-own" in page.get_attribute("#checkout", "href")
    assert vid not in page.get_attribute("#checkout", "href")
    assert page.get_attribute("#other", "href") == "https://example.org/pricing"

    # A form that already has the input is filled, not given a second one.
    assert page.evaluate("document.querySelectorAll('#signup input[name=refapp_vid]').length") == 1

    # Content rendered later (single-page apps, modals) is handled too.
    page.evaluate(
        """() => {
            const box = document.createElement("div");
            box.innerHTML = '<form data-refapp id="late-form"></form>'
                + '<a id="late-link" href="https://buy.stripe.com/test_late">Buy</a>';
            document.body.appendChild(box);
        }"""
    )
    page.wait_for_function("document.querySelector('#late-form input[name=refapp_vid]')", timeout=5_000)
    assert page.eval_on_selector("#late-form input[name=refapp_vid]", "e => e.value") == vid
    page.wait_for_function("document.querySelector('#late-link').href.includes('client_reference_id')")
    assert (
        page.get_attribute("#late-link", "href")
        == f"https://buy.stripe.com/test_late?client_reference_id={vid}"
    )


def test_sale_reported_with_the_visitor_id_pays_the_affiliate(
    page, live_server, merchant_site, program, affiliate
):
    CommissionRuleFactory(program=program, event_name="sale", type="percent", rate_bp=2000)
    _key, secret = apikey_create(program=program, mode="live")
    url = merchant_site.add_page("landing.html", body=FORM_AND_LINKS, program="acme")

    visit_and_wait_for_click(page, f"{url}?ref=JOHN")
    vid = visitor_id(page)
    assert poll(lambda: Click.objects.filter(affiliate=affiliate, visitor_id=vid).exists())
    # What the merchant's backend receives from the signup form.
    assert page.eval_on_selector("#signup input[name=refapp_vid]", "e => e.value") == vid

    status, body = post_event(
        live_server,
        secret,
        {"event": "sale", "order_id": "ORD-1", "visitor_id": vid, "amount_cents": 9900, "currency": "USD"},
    )

    assert status == 201, body
    assert body["attributed"] is True
    assert body["affiliate"]["code"] == "JOHN"
    assert [(c["amount_cents"], c["currency"], c["status"]) for c in body["commissions"]] == [
        (1980, "USD", "pending")
    ]
    commission = Commission.objects.get(public_id=body["commissions"][0]["id"])
    assert (commission.affiliate_id, commission.amount_cents, commission.status) == (
        affiliate.pk,
        1980,
        "pending",
    )


def test_consent_mode_waits_for_consent(page, context, merchant_site, affiliate):
    url = merchant_site.add_page("landing.html", body=FORM_AND_LINKS, program="acme", consent="required")
    sent = click_requests(page)

    page.goto(f"{url}?ref=JOHN")
    page.wait_for_function("window.refapp !== undefined")
    page.evaluate("window.readyCalls = []; window.refapp.ready(r => window.readyCalls.push(r.visitorId))")
    page.wait_for_load_state("networkidle")  # time for a report to leave, had the script sent one

    assert context.cookies() == []
    assert sent == []
    assert Click.objects.count() == 0
    assert page.evaluate("[window.refapp.visitorId, window.readyCalls]") == [None, []]
    assert page.locator("input[name=refapp_vid]").count() == 0
    assert page.get_attribute("#plink", "href") == "https://buy.stripe.com/test_28o5lq"

    with page.expect_response(is_click_api, timeout=10_000):
        page.evaluate("window.refapp.consent()")
    vid = visitor_id(page)

    assert merchant_cookies(context, merchant_site)["refapp_vid"]["value"] == vid
    assert page.evaluate("window.readyCalls") == [vid]
    assert page.eval_on_selector("#signup input[name=refapp_vid]", "e => e.value") == vid
    assert poll(lambda: Click.objects.filter(affiliate=affiliate, visitor_id=vid).exists())

    page.evaluate("window.refapp.consent()")  # a second call (every page of a CMP) changes nothing
    page.wait_for_load_state("networkidle")
    assert len(sent) == 1
    assert Click.objects.count() == 1
    assert page.evaluate("window.refapp.visitorId") == vid


@pytest.mark.parametrize("code", ["NOBODY", "GONE"], ids=["unknown", "suspended"])
def test_code_that_pays_nobody_records_no_click(page, context, merchant_site, program, affiliate, code):
    AffiliateFactory(program=program, code="GONE", status="suspended", email="gone@example.com")
    url = merchant_site.add_page("landing.html", program="acme")

    # The server has answered, so any row it was going to write is written.
    visit_and_wait_for_click(page, f"{url}?ref={code}")

    assert Click.objects.count() == 0
    # The visitor still gets an id, for a later visit through a real affiliate link.
    assert merchant_cookies(context, merchant_site)["refapp_vid"]["value"] == visitor_id(page)


def test_returning_visitor_keeps_the_visitor_id(page, context, merchant_site, affiliate):
    url = merchant_site.add_page("landing.html", program="acme")

    visit_and_wait_for_click(page, f"{url}?ref=JOHN")
    first = visitor_id(page)
    visit_and_wait_for_click(page, f"{url}?ref=JOHN")
    second = visitor_id(page)
    page.goto(url)  # a later page of the visit, no code in the URL
    third = visitor_id(page)

    assert first == second == third
    assert merchant_cookies(context, merchant_site)["refapp_vid"]["value"] == first
    assert page.evaluate("window.refapp.referral") == "JOHN"  # remembered from the cookie
    assert set(Click.objects.values_list("visitor_id", flat=True)) == {first}


def test_go_redirect_hands_its_visitor_id_to_the_tracker(
    page, context, live_server, merchant_site, affiliate
):
    merchant_site.add_page("index.html", body=FORM_AND_LINKS, program="acme")
    sent = click_requests(page)

    with page.expect_request(is_click_api, timeout=10_000) as info:
        page.goto(f"{live_server.url}/go/acme/JOHN")
    vid = visitor_id(page)
    page.wait_for_load_state("networkidle")

    click = Click.objects.get()  # recorded by the redirect
    assert (click.affiliate_id, click.visitor_id) == (affiliate.pk, vid)
    # The tracker did not report the same click again: its one request says the visit is recorded
    # and only asks for the referral's friend reward.
    assert len(sent) == 1 and json.loads(info.value.post_data)["recorded"] is True
    assert merchant_cookies(context, merchant_site)["refapp_vid"]["value"] == vid
    # The id leaves the address bar, so a shared URL does not share it; the code stays.
    assert page.url == f"{merchant_site.url}/?ref=JOHN"
    assert page.get_attribute("#plink", "href").endswith(f"client_reference_id={vid}")


def test_reports_the_click_by_fetch_keepalive_without_credentials(page, merchant_site, affiliate):
    # fetch, not sendBeacon: the answer carries the friend reward. A page without sendBeacon works.
    page.add_init_script("navigator.sendBeacon = () => false;")
    url = merchant_site.add_page("landing.html", program="acme")

    with page.expect_request(is_click_api, timeout=10_000) as info:
        page.goto(f"{url}?ref=JOHN")
    vid = visitor_id(page)

    request = info.value
    assert request.resource_type == "fetch"
    assert request.headers["content-type"] == "text/plain"
    assert json.loads(request.post_data) == {
        "program": "acme",
        "ref": "JOHN",
        "visitor_id": vid,
        "url": f"{url}?ref=JOHN",
        "referrer": "",
    }
    assert poll(lambda: Click.objects.filter(affiliate=affiliate, visitor_id=vid).exists())


def test_tampered_visitor_cookie_is_replaced(page, context, merchant_site, affiliate):
    url = merchant_site.add_page("landing.html", program="acme")
    host = urlsplit(merchant_site.url).hostname
    context.add_cookies([{"name": "refapp_vid", "value": "x%zz", "domain": host, "path": "/"}])

    visit_and_wait_for_click(page, f"{url}?ref=JOHN")
    vid = visitor_id(page)

    assert VISITOR_ID_RE.fullmatch(vid)
    assert merchant_cookies(context, merchant_site)["refapp_vid"]["value"] == vid
    assert poll(lambda: Click.objects.filter(affiliate=affiliate, visitor_id=vid).exists())


def test_programs_own_snippet_honours_its_params_and_cookie_days(
    page, context, live_server, merchant_site, program, affiliate
):
    program.ref_params = ["via"]
    program.cookie_days = 7
    program.save()
    tag = tracker_snippet(
        slug=program.slug,
        params=program.ref_params,
        cookie_days=program.cookie_days,
        base_url=live_server.url,
    )
    assert 'data-params="via"' in tag and 'data-cookie-days="7"' in tag
    url = merchant_site.add_page_with_tag("landing.html", tag) + "?via=JOHN"

    visit_and_wait_for_click(page, url)
    vid = visitor_id(page)

    assert page.evaluate("window.refapp.referral") == "JOHN"
    cookie = merchant_cookies(context, merchant_site)["refapp_vid"]
    assert cookie["value"] == vid
    expected_expiry = datetime.now(UTC) + timedelta(days=7)
    assert abs(cookie["expires"] - expected_expiry.timestamp()) < 3600
    assert poll(lambda: Click.objects.filter(affiliate=affiliate, visitor_id=vid).exists())
    page.wait_for_load_state("networkidle")
    click = Click.objects.get()
    assert (click.affiliate_id, click.visitor_id, click.landing_url) == (affiliate.pk, vid, url)
