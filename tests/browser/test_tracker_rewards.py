"""Friend rewards reach the visitor (issue 16, item 2), in a real Chromium on a merchant origin.

A visitor who arrives through an affiliate of a program with a friend reward gets the coupon from
the click's answer: window.refapp.coupon, the form field, the Stripe Payment Link's
prefilled_promo_code next to client_reference_id, and the label in data-refapp-reward elements; on
later pages of the visit too. A visitor nobody referred gets none of it, and consent mode holds it
all back until consent.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from affiliates.promotions import friend_reward_set
from tests.browser.test_tracker import (
    FORM_AND_LINKS,
    click_requests,
    is_click_api,
    merchant_cookies,
    poll,
    visit_and_wait_for_click,
    visitor_id,
)
from tests.factories import AffiliateFactory, ProgramFactory
from tracking.models import Click

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGE = FORM_AND_LINKS + '<p id="reward" data-refapp-reward></p>'
LABEL = "Referred by Jo: 20 % off your first 3 months"


@pytest.fixture
def program(merchant_site):
    program = ProgramFactory(slug="acme", name="Acme", website=f"{merchant_site.url}/")
    friend_reward_set(
        program=program,
        group=None,
        actor=None,
        kind="percent",
        percent_bp=2000,
        duration="repeating",
        duration_months=3,
    )
    return program


@pytest.fixture
def jo(program):
    return AffiliateFactory(
        program=program, code="JO", name="Jo Doe", status="active", email="jo@example.com"
    )


def wait_for_coupon(page) -> dict:
    page.wait_for_function("window.refapp && window.refapp.coupon", timeout=10_000)
    return page.evaluate("window.refapp.coupon")


def link_query(page, selector: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.get_attribute(selector, "href")).query)


def test_referred_visitor_gets_coupon_field_link_and_label(page, context, merchant_site, jo):
    url = merchant_site.add_page("pricing.html", body=PAGE, program="acme")

    visit_and_wait_for_click(page, f"{url}?ref=JO")
    vid = visitor_id(page)
    assert wait_for_coupon(page) == {"code": "JO", "label": LABEL}
    page.wait_for_function("document.querySelector('#signup input[name=refapp_coupon]')", timeout=5_000)
    assert page.eval_on_selector("#signup input[name=refapp_coupon]", "e => [e.type, e.value]") == [
        "hidden",
        "JO",
    ]
    assert page.locator("#search input[name=refapp_coupon]").count() == 0
    assert link_query(page, "#plink") == {"client_reference_id": [vid], "prefilled_promo_code": ["JO"]}
    assert page.text_content("#reward") == LABEL
    assert page.get_attribute("#other", "href") == "https://example.org/pricing"
    assert Click.objects.filter(affiliate=jo, visitor_id=vid).count() == 1

    # A later page of the visit, no code in its URL and no report sent: the coupon is remembered.
    sent = click_requests(page)
    page.goto(f"{merchant_site.url}/pricing.html")
    assert wait_for_coupon(page) == {"code": "JO", "label": LABEL}
    page.wait_for_function("document.querySelector('#reward').textContent.length > 0", timeout=5_000)
    assert page.text_content("#reward") == LABEL
    assert link_query(page, "#plink")["prefilled_promo_code"] == ["JO"]
    assert sent == []
    assert "refapp_cpn" in merchant_cookies(context, merchant_site)

    # Content rendered later gets it too.
    page.evaluate(
        """() => {
            const box = document.createElement("div");
            box.innerHTML = '<a id="late" href="https://buy.stripe.com/test_late">Buy</a><b id="late-reward" data-refapp-reward></b>';
            document.body.appendChild(box);
        }"""
    )
    page.wait_for_function(
        "document.querySelector('#late').href.includes('prefilled_promo_code')", timeout=5_000
    )
    assert page.text_content("#late-reward") == LABEL


def test_a_visitor_nobody_referred_gets_none_of_it(page, context, merchant_site, jo, program):
    url = merchant_site.add_page("pricing.html", body=PAGE, program="acme")
    page.goto(url)
    vid = visitor_id(page)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.refapp.coupon") is None
    assert page.locator("input[name=refapp_coupon]").count() == 0
    assert link_query(page, "#plink") == {"client_reference_id": [vid]}
    assert page.text_content("#reward") == ""
    assert "refapp_cpn" not in merchant_cookies(context, merchant_site)

    # An unknown code is no referral either, and a program without a reward offers nothing.
    visit_and_wait_for_click(page, f"{url}?ref=NOBODY")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.refapp.coupon") is None and page.text_content("#reward") == ""
    plain = ProgramFactory(slug="plain", website=f"{merchant_site.url}/")
    AffiliateFactory(program=plain, code="ANN", name="Ann", status="active")
    other = merchant_site.add_page("plain.html", body=PAGE, program="plain")
    visit_and_wait_for_click(page, f"{other}?ref=ANN")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.refapp.coupon") is None
    assert page.locator("input[name=refapp_coupon]").count() == 0
    assert "prefilled_promo_code" not in link_query(page, "#plink")


def test_consent_mode_holds_the_coupon_back_until_consent(page, context, merchant_site, jo):
    url = merchant_site.add_page("pricing.html", body=PAGE, program="acme", consent="required")
    sent = click_requests(page)

    page.goto(f"{url}?ref=JO")
    page.wait_for_function("window.refapp !== undefined")
    page.wait_for_load_state("networkidle")
    assert sent == [] and context.cookies() == []
    assert page.evaluate("window.refapp.coupon") is None
    assert page.locator("input[name=refapp_coupon]").count() == 0
    assert page.get_attribute("#plink", "href") == "https://buy.stripe.com/test_28o5lq"
    assert page.text_content("#reward") == ""

    with page.expect_response(is_click_api, timeout=10_000):
        page.evaluate("window.refapp.consent()")
    assert wait_for_coupon(page) == {"code": "JO", "label": LABEL}
    page.wait_for_function("document.querySelector('#reward').textContent.length > 0", timeout=5_000)
    assert page.text_content("#reward") == LABEL
    assert link_query(page, "#plink")["prefilled_promo_code"] == ["JO"]


def test_go_redirect_visitor_gets_the_coupon_and_one_click(page, live_server, merchant_site, jo):
    merchant_site.add_page("index.html", body=PAGE, program="acme")
    page.goto(f"{live_server.url}/go/acme/JO")
    assert wait_for_coupon(page) == {"code": "JO", "label": LABEL}
    page.wait_for_load_state("networkidle")
    assert poll(lambda: Click.objects.count() == 1)
    assert Click.objects.get().source == "link"  # the redirect's; the tracker only asked for the coupon
