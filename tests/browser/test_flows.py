"""The panel, the partner portal and the join page in a real Chromium, end to end.

Each test is a story one or more people live through in their own browsers (one Playwright
context each): the first admin setting refapp up, an invited partner, an applicant and the admin
who reviews them, and a partner watching a real click and sale arrive on their dashboard.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import BrowserContext, Page, expect

from affiliates.magic import link_create
from affiliates.models import Affiliate, ApiKey, Program, ProgramStaff
from affiliates.services import apikey_create, hash_secret
from commissions.models import Commission
from tests.browser.conftest import DESKTOP_UA
from tests.factories import AffiliateFactory, CommissionRuleFactory, ProgramFactory
from tracking.models import Click

from .flows_helpers import (
    control_count,
    layout_problems,
    link_in,
    panel_login,
    poll,
    portal_confirm_link,
    portal_sign_in_by_email,
    post_event,
    screenshot,
    unlabelled_controls,
    wait_for_charts,
    wait_for_email,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN_PASSWORD = "correct horse battery staple"
CLICK_PATH = "/api/v1/track/click"


@pytest.fixture
def person(browser) -> Iterator[Callable[..., Page]]:
    """Opens a page in a new browser profile (a different person).

    JavaScript errors, console errors (CSP violations among them) and assets that fail to load
    fail the test.
    """
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def open_page(**options) -> Page:
        context = browser.new_context(user_agent=DESKTOP_UA, **options)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
        page.on("console", lambda msg: _console_error(page, msg, errors))
        page.on("response", lambda response: _failed_asset(page, response, errors))
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert errors == [], f"JavaScript errors in the panel or portal: {errors}"


def _console_error(page: Page, msg, errors: list[str]) -> None:
    # A failed load is reported by _failed_asset, with its URL; a page's own 404 is expected.
    if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
        errors.append(f"{page.url}: console: {msg.text}")


def _failed_asset(page: Page, response, errors: list[str]) -> None:
    """A stylesheet, script or image of the page that did not load."""
    request = response.request
    if response.status >= 400 and request.resource_type != "document" and "/favicon" not in response.url:
        errors.append(f"{page.url}: {request.resource_type} {response.url} answered {response.status}")


def make_admin(program: Program | None = None, *, username: str = "admin") -> User:
    user = User.objects.create_user(username, f"{username}@acme.example", ADMIN_PASSWORD, is_staff=True)
    if program is not None:
        ProgramStaff.objects.create(program=program, user=user, role=ProgramStaff.Role.ADMIN)
    return user


def stat(page: Page, name: str):
    return page.locator(f"[data-stat={name}]")


# --- 1. first run ------------------------------------------------------------------------------


def test_first_run_setup_program_tracker_tag_and_key(person, live_server):
    page = person()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)

    page.goto(f"{live_server.url}/panel/")
    expect(page).to_have_url(f"{live_server.url}/panel/setup/")
    expect(page.get_by_role("heading", name="Welcome to refapp")).to_be_visible()
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Email").fill("owner@acme.example")
    page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
    page.get_by_label("Password confirmation").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Create admin account").click()

    # Signed in and sent on to create the first program.
    expect(page).to_have_url(f"{live_server.url}/panel/programs/new/")
    expect(page.locator(".flash-success")).to_contain_text("Your admin account is ready")
    owner = User.objects.get(username="owner")
    assert (owner.email, owner.is_staff, owner.is_superuser) == ("owner@acme.example", True, True)

    page.get_by_label("Name").fill("Acme Widgets")
    page.get_by_label("Slug").fill("acme")
    page.get_by_label("Website").fill("https://acme.example")
    page.get_by_role("button", name="Create program").click()

    expect(page).to_have_url(f"{live_server.url}/panel/p/acme/keys/")
    expect(page.locator(".flash-success")).to_contain_text("Acme Widgets is ready")
    program = Program.objects.get(slug="acme")
    assert ProgramStaff.objects.filter(program=program, user=owner, role="admin").exists()

    # The tracker tag, copied to the clipboard with one press.
    snippet = page.locator("#snippet")
    expected_tag = snippet.input_value()
    assert re.fullmatch(
        r'<script async src="https?://[^"]+/t\.js\?v=[^"]+" data-program="acme"></script>', expected_tag
    ), expected_tag
    copy = page.locator('button[data-copy="#snippet"]')
    copy.click()
    expect(copy).to_have_attribute("data-copied", "true")
    assert page.evaluate("navigator.clipboard.readText()") == expected_tag

    # A live key: its secret is shown once, then only its prefix remains.
    page.get_by_label("Mode").select_option("live")
    page.get_by_label("Name").fill("billing backend")
    page.get_by_role("button", name="Create key").click()
    secret_field = page.locator("#new-secret")
    expect(secret_field).to_be_visible()
    secret = secret_field.input_value()
    assert re.fullmatch(r"sk_live_[A-Za-z0-9_-]{40,}", secret), secret
    key = ApiKey.objects.get(program=program)
    assert (key.mode, key.name, key.key_hash, key.revoked_at) == (
        "live",
        "billing backend",
        hash_secret(secret),
        None,
    )
    expect(page.locator("table")).to_contain_text(f"{key.prefix}…")

    page.reload()
    expect(page.locator("table")).to_contain_text(f"{key.prefix}…")
    expect(page.locator("#new-secret")).to_have_count(0)
    assert secret not in page.content()

    # Setup is over for good.
    response = page.goto(f"{live_server.url}/panel/setup/")
    assert response is not None and response.status == 404


# --- 2. invitation -----------------------------------------------------------------------------


def test_invited_affiliate_signs_in_from_the_email(person, live_server):
    program = ProgramFactory(slug="acme", name="Acme", website="https://acme.example/shop")
    make_admin(program)

    admin = person()
    panel_login(admin, live_server, "admin", ADMIN_PASSWORD, path="/panel/p/acme/affiliates/")
    expect(admin).to_have_url(f"{live_server.url}/panel/p/acme/affiliates/")
    admin.get_by_role("button", name="Invite an affiliate").click()
    expect(admin).to_have_url(f"{live_server.url}/panel/p/acme/affiliates/invite/")
    admin.get_by_label("Name").fill("Jane Doe")
    admin.get_by_label("Email").fill("Jane@Partner.example")
    admin.get_by_label("Code").fill("JANE")
    admin.get_by_role("button", name="Send invitation").click()

    jane = Affiliate.objects.get(program=program, email="jane@partner.example")
    expect(admin).to_have_url(f"{live_server.url}/panel/p/acme/affiliates/{jane.public_id}/")
    expect(admin.locator(".flash-success")).to_contain_text("Jane Doe joined as JANE")
    assert (jane.code, jane.status) == ("JANE", "active")

    message = wait_for_email("jane@partner.example", "invited to the Acme partner program")
    assert "JANE" in message.body
    url = link_in(message, "/portal/login/", live_server)

    # Jane, on her own computer.
    partner = person()
    portal_confirm_link(partner, url)
    expect(partner.get_by_role("heading", name="Hello, Jane Doe")).to_be_visible()
    expect(partner.locator("#referral-link")).to_have_value("https://acme.example/shop?ref=JANE")
    expect(partner.locator("#go-link")).to_have_value(re.compile(r"/go/acme/JANE$"))

    # The link was single-use.
    other = person()
    other.goto(url)
    expect(other.get_by_role("heading", name="This sign-in link no longer works")).to_be_visible()


# --- 3. join and approval ----------------------------------------------------------------------


def test_applicant_joins_and_admin_approves(person, live_server):
    program = ProgramFactory(
        slug="acme",
        name="Acme",
        website="https://acme.example",
        auto_approve=False,
        terms_url="https://acme.example/partner-terms",
    )
    make_admin(program)

    applicant = person()
    applicant.goto(f"{live_server.url}/join/acme/")
    expect(applicant.get_by_role("heading", name="Join the Acme partner program")).to_be_visible()
    applicant.get_by_label("Name").fill("Sam Writer")
    applicant.get_by_label("Email").fill("sam@blog.example")
    applicant.get_by_label("Website").fill("https://blog.example")
    applicant.get_by_label("How will you promote us?").fill("Reviews on my blog.")
    applicant.get_by_label("I accept the program terms").check()
    applicant.get_by_role("button", name="Apply").click()
    expect(applicant).to_have_url(f"{live_server.url}/join/acme/thanks/")
    expect(applicant.get_by_role("heading", name="Check your email")).to_be_visible()
    assert not Affiliate.objects.filter(email="sam@blog.example").exists()  # not before verification

    verify_url = link_in(
        wait_for_email("sam@blog.example", "Confirm your application to Acme"),
        "/join/acme/verify/",
        live_server,
    )
    applicant.goto(verify_url)
    applicant.get_by_role("button", name="Confirm my email").click()
    expect(applicant).to_have_url(f"{live_server.url}/join/acme/thanks/")
    expect(applicant.get_by_role("heading", name="Application received")).to_be_visible()
    sam = Affiliate.objects.get(program=program, email="sam@blog.example")
    assert (sam.name, sam.status, sam.website) == ("Sam Writer", "pending", "https://blog.example")

    applicant.get_by_role("link", name="Open your partner portal").click()
    expect(applicant).to_have_url(f"{live_server.url}/portal/")
    expect(applicant.locator('[data-notice="pending"]')).to_contain_text("Your application is being reviewed")
    expect(applicant.locator("#referral-link")).to_have_count(0)

    # The admin follows the link of the notice email, signs in and lands on the application.
    detail_path = f"/panel/p/acme/affiliates/{sam.public_id}/"
    notice = wait_for_email("admin@acme.example", "New partner application to Acme: Sam Writer")
    admin_url = link_in(notice, detail_path, live_server)
    admin = person()
    admin.goto(admin_url)
    expect(admin).to_have_url(re.compile(r"/panel/login/\?next="))
    admin.get_by_label("Username").fill("admin")
    admin.get_by_label("Password").fill(ADMIN_PASSWORD)
    admin.get_by_role("button", name="Sign in").click()
    expect(admin).to_have_url(live_server.url + detail_path)
    expect(admin.get_by_role("heading", level=1)).to_contain_text("Sam Writer")
    expect(admin.locator("details", has_text="Application")).to_contain_text("https://blog.example")

    approve_form = admin.locator("section.status-actions form").filter(
        has=admin.get_by_role("button", name="Approve")
    )
    reason = approve_form.locator("[name=reason]")
    if reason.count():  # a reason is asked for only when the form has the field
        reason.fill("Good fit for the program.")
    approve_form.get_by_role("button", name="Approve").click()
    expect(admin.locator(".flash-success")).to_contain_text("Sam Writer is now active")
    # Suspending is now the risky action: it waits in the danger zone at the foot of the page.
    danger = admin.locator("#danger-zone")
    expect(danger.get_by_role("button", name="Suspend")).to_be_hidden()
    danger.locator("summary", has_text="Suspend").click()
    expect(danger.get_by_role("button", name="Suspend Sam Writer")).to_be_visible()

    sam.refresh_from_db()
    assert sam.status == "active" and sam.approved_at is not None
    approval = wait_for_email("sam@blog.example", "Your application to Acme was approved")
    link_in(approval, "/portal/login/", live_server)  # points to the portal's sign-in page

    # Back in the applicant's browser, still signed in: the links are there now.
    applicant.reload()
    expect(applicant.locator('[data-notice="pending"]')).to_have_count(0)
    expect(applicant.locator("#referral-link")).to_have_value(f"https://acme.example/?ref={sam.code}")


# --- 4. dashboards with a real click and sale ----------------------------------------------------


def test_click_and_sale_reach_both_dashboards(page, person, live_server, merchant_site):
    program = ProgramFactory(slug="acme", name="Acme", website=f"{merchant_site.url}/", cookie_days=30)
    john = AffiliateFactory(
        program=program, code="JOHN", name="John Partner", email="john@partner.example", status="active"
    )
    CommissionRuleFactory(program=program, event_name="sale", type="percent", rate_bp=2000)
    _key, secret = apikey_create(program=program, mode="live")
    make_admin(program)

    # A visitor arrives on the merchant's site through John's link.
    landing = merchant_site.add_page("landing.html", program="acme")
    with page.expect_response(lambda r: r.url.endswith(CLICK_PATH), timeout=10_000) as click:
        page.goto(f"{landing}?ref=JOHN")
    assert click.value.status == 202
    page.wait_for_function("window.refapp && window.refapp.visitorId", timeout=10_000)
    vid = page.evaluate("window.refapp.visitorId")
    assert poll(lambda: Click.objects.filter(affiliate=john, visitor_id=vid).exists())

    # ...and buys: the merchant's backend reports the sale.
    status, body = post_event(
        live_server,
        secret,
        {"event": "sale", "order_id": "ORD-1", "visitor_id": vid, "amount_cents": 9900, "currency": "USD"},
    )
    assert status == 201, body
    assert body["attributed"] is True
    commission = Commission.objects.get(affiliate=john)
    assert (commission.amount_cents, commission.status) == (1980, "pending")

    # John's dashboard.
    portal = person()
    portal_sign_in_by_email(portal, live_server, "john@partner.example")
    expect(portal.get_by_role("heading", name="Hello, John Partner")).to_be_visible()
    expect(stat(portal, "clicks")).to_have_text("1")
    expect(stat(portal, "conversions")).to_have_text("1")
    expect(stat(portal, "earnings")).to_have_text("19.80 USD")
    expect(stat(portal, "balance-pending")).to_have_text("19.80 USD")
    expect(stat(portal, "balance-approved")).to_have_text("0.00 USD")
    wait_for_charts(portal)
    screenshot(portal, "portal-dashboard.png")

    # The merchant's dashboard.
    admin = person()
    panel_login(admin, live_server, "admin", ADMIN_PASSWORD)
    expect(admin).to_have_url(f"{live_server.url}/panel/p/acme/")  # the admin's only program
    expect(stat(admin, "clicks")).to_have_text("1")
    expect(stat(admin, "conversions")).to_have_text("1")
    expect(stat(admin, "revenue")).to_have_text("99.00 USD")
    expect(stat(admin, "pending")).to_have_text("19.80 USD")
    top = admin.locator("#report table tbody tr")
    expect(top).to_have_count(1)
    expect(top).to_contain_text("John Partner")
    wait_for_charts(admin)
    screenshot(admin, "panel-dashboard.png")


# --- 5. small and large screens ------------------------------------------------------------------


@pytest.fixture
def busy_program(live_server):
    """A program with some history: affiliates, clicks, conversions and commissions."""
    program = ProgramFactory(
        slug="acme",
        name="Acme",
        website="https://acme.example",
        terms_url="https://acme.example/partner-terms",
    )
    CommissionRuleFactory(program=program, event_name="sale", type="percent", rate_bp=2000)
    _key, secret = apikey_create(program=program, mode="live", name="billing backend")
    make_admin(program)
    john = AffiliateFactory(
        program=program, code="JOHN", name="John Partner", email="john@partner.example", status="active"
    )
    AffiliateFactory(program=program, code="MARY", name="Mary Long-Name Publisher", status="pending")
    now = timezone.now()
    Click.objects.bulk_create(
        Click(
            program=program,
            affiliate=john,
            visitor_id=f"visitor-{n:04d}-abcdefghijklmnop",
            created_at=now,
            landing_url="https://acme.example/pricing?ref=JOHN",
        )
        for n in range(3)
    )
    for n, amount in enumerate([9900, 125000]):
        status, body = post_event(
            live_server,
            secret,
            {
                "event": "sale",
                "order_id": f"ORD-{n}",
                "visitor_id": f"visitor-{n:04d}-abcdefghijklmnop",
                "amount_cents": amount,
                "currency": "USD",
            },
        )
        assert status == 201 and body["attributed"], body
    return program


@pytest.mark.parametrize("width", [375, 1280])
def test_pages_fit_the_screen_and_forms_are_labelled(person, live_server, busy_program, width):
    viewport = {"width": width, "height": 800}
    problems: list[str] = []

    admin = person(viewport=viewport)
    panel_login(admin, live_server, "admin", ADMIN_PASSWORD)
    for path in ("", "affiliates/", "commissions/", "keys/"):
        admin.goto(f"{live_server.url}/panel/p/acme/{path}")
        expect(admin.locator("main h1")).to_be_visible()
        problems += layout_problems(admin)
        if path == "":
            expect(stat(admin, "conversions")).to_have_text("2")
            wait_for_charts(admin)
            if width == 375:
                screenshot(admin, "panel-dashboard-375.png")

    admin.goto(f"{live_server.url}/panel/p/acme/settings/")
    settings_form = "form.settings-form"
    assert control_count(admin, settings_form) >= 10
    problems += [f"settings form: {c} has no label" for c in unlabelled_controls(admin, settings_form)]
    referral_form = "form.referral-settings-form"  # refer-a-friend, the second form of the page
    assert control_count(admin, referral_form) >= 7
    problems += [f"refer-a-friend form: {c} has no label" for c in unlabelled_controls(admin, referral_form)]
    problems += layout_problems(admin)

    # A draft rule previewed against last month (this program's sales are from this month).
    admin.goto(f"{live_server.url}/panel/p/acme/rules/new/")
    admin.get_by_label("Event", exact=True).fill("sale")
    admin.get_by_label("Rate (%)").fill("10")
    admin.get_by_role("button", name="Preview last month").click()
    expect(admin.locator("#rule-preview")).to_be_visible()
    expect(admin.locator("[data-preview=empty]")).to_be_visible()
    problems += [f"rule form: {c} has no label" for c in unlabelled_controls(admin, "form.rule-form")]
    problems += layout_problems(admin)

    partner = person(viewport=viewport)
    token = link_create(purpose="login", email="john@partner.example", now=timezone.now())
    portal_confirm_link(partner, f"{live_server.url}/portal/login/{token}/")
    expect(stat(partner, "conversions")).to_have_text("2")
    wait_for_charts(partner)
    problems += layout_problems(partner)
    if width == 375:
        screenshot(partner, "portal-dashboard-375.png")
    partner.goto(f"{live_server.url}/portal/commissions/")
    expect(partner.locator("tr[data-commission]")).to_have_count(2)
    problems += layout_problems(partner)

    applicant = person(viewport=viewport)
    applicant.goto(f"{live_server.url}/join/acme/")
    join_form = 'form[action="/join/acme/"]'
    assert control_count(applicant, join_form) == 5  # name, email, website, promotion, terms
    problems += [f"join form: {c} has no label" for c in unlabelled_controls(applicant, join_form)]
    problems += layout_problems(applicant)

    assert problems == [], "\n".join(problems)
