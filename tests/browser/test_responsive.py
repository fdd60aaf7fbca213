"""Every panel and portal page at 375 px and at 1280 px, in a real Chromium, with realistic data.

For each page: the page is no wider than the viewport; every table shows its key columns (the
`th.key`/`td.key` cells each table declares) inside the viewport and not hidden, folds its other
cells into the row on a narrow screen instead of hiding them, and at 1280 px shows every column
with no sideways scroll; the page's primary action is visible. The navigation takes one row on a
phone, and list filters fold away. A full-page screenshot of each page is saved under
var/screenshots/responsive/.

One test per width: each seeds the data once, signs in once per area, and reuses one browser
context for all of that area's pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from playwright.sync_api import Page, expect

from affiliates.magic import link_create
from affiliates.models import ProgramStaff
from affiliates.services import affiliate_set_status, apikey_create
from commissions.services import commission_set_status
from refapp.models import Actor, AuditLog
from tests.browser.conftest import DESKTOP_UA
from tests.factories import (
    AffiliateFactory,
    ClickFactory,
    CommissionFactory,
    CommissionRuleFactory,
    EventFactory,
    FraudFlagFactory,
    PartnerGroupFactory,
    PayoutFactory,
    ProgramFactory,
    webhook_endpoint_with_failed_delivery,
)

from .flows_helpers import layout_problems, panel_login, portal_confirm_link, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
LONG_REFERRER = (
    "https://www.an-extremely-long-referring-domain-name-for-testing.example/blog/2026/12/"
    "the-ultimate-guide-to-choosing-an-analytics-platform-for-small-teams?utm_source=newsletter"
)

# Pages that are another helper's to rework (issue 19 part A: dashboard and reports). Their tables
# do not declare key columns yet; for them the test asks only that the first column is visible.
TABLES_NOT_YET_FOLDING = {"panel dashboard", "panel reports"}


@dataclass
class Seed:
    program: object
    admin: User
    active: object
    pending: object
    suspended: object
    commission: object
    clawback: object
    payout_paid: object
    payout_pending: object
    payout_failed: object
    group: object
    rule: object
    endpoint: object
    invited: User


def seed() -> Seed:
    """A program with some months of history, names and addresses as long as real ones get."""
    now = timezone.now()
    program = ProgramFactory(
        slug="acme",
        name="Acme Cloud Analytics Partners",
        website="https://www.acme-cloud-analytics.example",
    )
    admin = User.objects.create_user(
        "admin", "operations.manager@acme-cloud-analytics.example", PASSWORD, is_staff=True
    )
    ProgramStaff.objects.create(program=program, user=admin, role=ProgramStaff.Role.ADMIN)
    invited = User.objects.create_user("new.colleague@acme-cloud-analytics.example", is_staff=True)
    invited.email = invited.username
    invited.set_unusable_password()
    invited.save()
    ProgramStaff.objects.create(program=program, user=invited, role=ProgramStaff.Role.VIEWER)

    group = PartnerGroupFactory(program=program, name="Top-tier content partners (EMEA and APAC)")
    rule = CommissionRuleFactory(program=program, event_name="sale", type="percent", rate_bp=2000)
    CommissionRuleFactory(program=program, event_name="sale", type="percent", rate_bp=3000, group=group)
    key, _secret = apikey_create(program=program, mode="live", name="Billing backend (Zapier)")

    names = [
        (
            "Maximiliana Oberhausen-Wittgenstein",
            "maximiliana.oberhausen-wittgenstein@publisher-network.example",
        ),
        ("Jean-Baptiste de La Fontaine-Moreau", "jb.delafontaine@reviews-and-comparisons.example"),
        ("Priya Ramaswamy-Krishnamurthy", "priya@the-saas-newsletter-for-product-people.example"),
        ("Ola Nordmann", "ola@nordmann.example"),
    ]
    active = []
    for n, (name, email) in enumerate(names):
        active.append(
            AffiliateFactory(
                program=program,
                name=name,
                email=email,
                code=f"PARTNER{n}LONGCODE",
                group=group if n == 0 else None,
                payout_method="paypal",
                paypal_email=email,
            )
        )
    pending = AffiliateFactory(
        program=program,
        name="Applicant With A Rather Long Company Name Ltd",
        email="partnerships@applicant-with-a-rather-long-company-name.example",
        code="APPLICANT",
        status="pending",
        website="https://applicant-with-a-rather-long-company-name.example/reviews",
        promotion="Reviews and comparison tables, newsletter of 40,000 readers.",
    )
    suspended = AffiliateFactory(program=program, name="Suspended Spammer", code="SPAM", status="active")
    affiliate_set_status(
        affiliate=suspended, status="suspended", reason="coupon-site spam", actor=Actor.for_user(admin)
    )
    AffiliateFactory(program=program, name="Rejected Applicant", code="NOPE", status="rejected")

    main = active[0]
    for n in range(6):
        ClickFactory(
            affiliate=active[n % 4],
            visitor_id=f"visitor-{n:04d}-abcdefghijklmnopqrstuvwxyz",
            referrer=LONG_REFERRER,
            landing_url=f"https://www.acme-cloud-analytics.example/pricing/enterprise?ref=PARTNER{n % 4}LONGCODE",
            utm_source="newsletter",
            utm_campaign="black-friday-2026-enterprise-upgrade",
            sub_id="issue-142-header-banner",
            created_at=now - timedelta(days=n),
        )
    EventFactory(program=program, name="signup", order_id="unattributed-order-0001-with-a-long-id")

    # Commissions in every status, a partial reversal and a clawback of a paid one.
    commission = CommissionFactory(
        affiliate=main, rule=rule, amount_cents=2_468, order_id="ORD-2026-000123456789-EU"
    )
    CommissionFactory(affiliate=main, rule=rule, amount_cents=61_000, status="approved", approved_at=now)
    for n, affiliate in enumerate(active[1:], start=1):
        CommissionFactory(
            affiliate=affiliate,
            rule=rule,
            amount_cents=40_000 + n * 12_345,
            status="approved",
            approved_at=now,
        )
    CommissionFactory(
        affiliate=main, rule=rule, amount_cents=1_500, status="rejected", status_reason="test order"
    )
    paid = CommissionFactory(
        affiliate=main, rule=rule, amount_cents=9_900, status="paid", created_at=now - timedelta(days=60)
    )
    clawback = CommissionFactory(
        affiliate=main,
        event=paid.event,
        rule=rule,
        kind="reversal",
        reverses=paid,
        amount_cents=-9_900,
        status="approved",
        approved_at=now,
        inputs={"reverses": paid.public_id, "reason": "refund", "order_amount_cents": 49_500},
    )
    flagged = CommissionFactory(affiliate=active[2], rule=rule, amount_cents=3_300, status="rejected")
    FraudFlagFactory(commission=flagged)
    resolved = FraudFlagFactory(commission=CommissionFactory(affiliate=active[3], status="rejected"))
    resolved.status = "confirmed"
    resolved.resolved_at = now
    resolved.resolved_by = f"user:{admin.pk}"
    resolved.save()

    payout_paid = PayoutFactory(
        affiliate=main,
        method="stripe",
        destination="acct_1QxYzLongStripeAccount",
        status="paid",
        transfer_id="tr_1QxYzAbCdEfGhIjKlMnOpQr",
        paid_at=now - timedelta(days=30),
        period=(now - timedelta(days=31)).strftime("%Y-%m"),
        amount_cents=123_456,
    )
    payout_pending = PayoutFactory(affiliate=active[1], period=(now - timedelta(days=62)).strftime("%Y-%m"))
    payout_failed = PayoutFactory(
        affiliate=active[2],
        method="stripe",
        destination="acct_failed",
        status="failed",
        failure_reason="The destination account has not finished onboarding (payouts_enabled is false).",
        period=(now - timedelta(days=93)).strftime("%Y-%m"),
    )

    # History by every kind of actor: a person, an API key, the system, an affiliate.
    commission_set_status(
        commission=commission,
        status="approved",
        reason="checked by hand",
        actor=Actor.for_user(admin),
        now=now,
    )
    AuditLog.objects.create(
        actor_label=f"api:{key.prefix}",
        action="order.refunded",
        program_id=program.pk,
        object_type="tracking.event",
        object_id=paid.event.public_id,
        data={"refund_id": "re_3QxYzAbCdEfGhIjKlMnOpQrStUv", "amount_cents": 49_500},
    )
    AuditLog.objects.create(
        actor_label=f"affiliate:{main.public_id}",
        action="affiliate.payout_method_changed",
        program_id=program.pk,
        object_type="affiliates.affiliate",
        object_id=main.public_id,
        data={"from": None, "to": {"method": "paypal", "paypal_email": main.email}},
    )
    endpoint, _delivery = webhook_endpoint_with_failed_delivery(program)
    return Seed(
        program=program,
        admin=admin,
        active=main,
        pending=pending,
        suspended=suspended,
        commission=commission,
        clawback=clawback,
        payout_paid=payout_paid,
        payout_pending=payout_pending,
        payout_failed=payout_failed,
        group=group,
        rule=rule,
        endpoint=endpoint,
        invited=invited,
    )


def panel_pages(s: Seed) -> list[tuple[str, str, str | None]]:
    """(name, path, primary action selector) for every panel page; None: the page has no action."""
    p = "/panel/p/acme/"
    uid = urlsafe_base64_encode(force_bytes(s.invited.pk))
    token = default_token_generator.make_token(s.invited)
    return [
        ("panel dashboard", p, None),
        ("panel programs", "/panel/programs/", "main a[href='/panel/programs/new/']"),
        ("panel program new", "/panel/programs/new/", "main form button[type=submit]"),
        ("panel settings", f"{p}settings/", "form.settings-form button[type=submit]"),
        ("panel keys", f"{p}keys/", "main form.toolbar button[type=submit]"),
        ("panel team", f"{p}team/", "form.narrow-form button[type=submit]"),
        ("panel affiliates", f"{p}affiliates/", f"main a[href='{p}affiliates/invite/']"),
        ("panel affiliate invite", f"{p}affiliates/invite/", "main form button[type=submit]"),
        ("panel affiliate active", f"{p}affiliates/{s.active.public_id}/", "main .copy-field button"),
        (
            "panel affiliate pending",
            f"{p}affiliates/{s.pending.public_id}/",
            ".status-actions .primary-action",
        ),
        (
            "panel affiliate suspended",
            f"{p}affiliates/{s.suspended.public_id}/",
            ".status-actions .primary-action",
        ),
        (
            "panel affiliate privacy",
            f"{p}affiliates/{s.active.public_id}/privacy/",
            "main form button[type=submit]",
        ),
        ("panel privacy", f"{p}privacy/", "main form button[type=submit]"),
        ("panel groups", f"{p}groups/", f"main a[href='{p}groups/new/']"),
        ("panel group new", f"{p}groups/new/", "main form button[type=submit]"),
        ("panel group edit", f"{p}groups/{s.group.public_id}/", "main form button[type=submit]"),
        ("panel rules", f"{p}rules/", f"main a[href='{p}rules/new/']"),
        ("panel rule new", f"{p}rules/new/", "form.rule-form button[type=submit]"),
        ("panel rule edit", f"{p}rules/{s.rule.public_id}/", "form.rule-form button[type=submit]"),
        ("panel commissions", f"{p}commissions/", "#bulk-form button[type=submit]"),
        ("panel commission", f"{p}commissions/{s.commission.public_id}/", "main .explanation"),
        ("panel commission clawback", f"{p}commissions/{s.clawback.public_id}/", "[data-no-reject]"),
        ("panel fraud", f"{p}fraud/", "main button[value=dismiss]"),
        ("panel events", f"{p}events/", None),
        ("panel clicks", f"{p}clicks/", None),
        ("panel activity", f"{p}activity/", None),
        ("panel reports", f"{p}reports/", None),
        ("panel payouts", f"{p}payouts/", "main a.primary-action"),
        ("panel payout run", f"{p}payouts/run/", "main button.primary-action"),
        ("panel payout paid", f"{p}payouts/{s.payout_paid.public_id}/", None),
        ("panel payout pending", f"{p}payouts/{s.payout_pending.public_id}/", "main button.primary-action"),
        ("panel payout failed", f"{p}payouts/{s.payout_failed.public_id}/", "main button.primary-action"),
        ("panel webhooks", f"{p}webhooks/", f"main a[href='{p}webhooks/new/']"),
        ("panel webhook new", f"{p}webhooks/new/", "main form button[type=submit]"),
        ("panel webhook", f"{p}webhooks/{s.endpoint.public_id}/", "main .actions a[role=button]"),
        ("panel webhook edit", f"{p}webhooks/{s.endpoint.public_id}/edit/", "main form button[type=submit]"),
        ("panel password", "/panel/password/", "main form button[type=submit]"),
        ("panel welcome", f"/panel/welcome/{uid}/{token}/", "main form button[type=submit]"),
    ]


PORTAL_PAGES = [
    ("portal dashboard", "/portal/", "[data-copy='#referral-link']"),
    ("portal conversions", "/portal/conversions/", None),
    ("portal commissions", "/portal/commissions/", None),
    ("portal payouts", "/portal/payouts/", "main a[href='/portal/settings/payout/']"),
    ("portal payout settings", "/portal/settings/payout/", "main form button[type=submit]"),
    ("portal profile", "/portal/profile/", "main form button[type=submit]"),
]

# Every table of the page: its key columns inside the viewport and shown, no cell hidden, and
# (reported per table) whether it scrolls sideways inside its wrapper.
_TABLES_JS = """() => {
  const width = window.innerWidth;
  const shown = (el) => {
    const style = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    return style.display !== "none" && style.visibility !== "hidden" && r.width > 0 && r.height > 0;
  };
  const inside = (el) => { const r = el.getBoundingClientRect(); return r.left >= -1 && r.right <= width + 1; };
  return Array.from(document.querySelectorAll("main table")).map((table, index) => {
    const heads = Array.from(table.querySelectorAll("thead th"));
    const declared = heads.filter((th) => th.classList.contains("key")).length;
    const rows = Array.from(table.querySelectorAll("tbody tr")).filter((tr) => !tr.querySelector("td[colspan]"));
    const wrap = table.closest(".table-wrap");
    const problems = [];
    for (const [r, tr] of rows.slice(0, 5).entries()) {
      const cells = Array.from(tr.children);
      const keys = declared ? cells.filter((td) => td.classList.contains("key")) : cells.slice(0, 1);
      for (const td of keys) {
        if (!shown(td) && td.textContent.trim()) problems.push(`row ${r}: key cell "${td.dataset.label || td.cellIndex}" is hidden`);
        else if (!inside(td)) problems.push(`row ${r}: key cell "${td.dataset.label || td.cellIndex}" is outside the viewport (${Math.round(td.getBoundingClientRect().right)}px)`);
      }
      for (const td of cells) {
        if (getComputedStyle(td).display === "none" && td.textContent.trim()) problems.push(`row ${r}: a cell is display:none`);
      }
    }
    return {
      index,
      rt: table.classList.contains("rt"),
      declared,
      rows: rows.length,
      columns: heads.length,
      scrolls: wrap ? wrap.scrollWidth > wrap.clientWidth + 1 : false,
      headsOutside: heads.filter((th) => th.getBoundingClientRect().right > width + 1).length,
      problems,
    };
  });
}"""


def table_problems(page: Page, name: str, width: int) -> list[str]:
    problems = []
    for t in page.evaluate(_TABLES_JS):
        where = f"{name} @{width}: table {t['index']}"
        problems += [f"{where}: {p}" for p in t["problems"]]
        relaxed = name in TABLES_NOT_YET_FOLDING
        if not relaxed and t["columns"] > 1 and not t["declared"]:
            problems.append(f"{where}: declares no key columns (th.key)")
        if width >= 1280 and (t["scrolls"] or t["headsOutside"]):
            problems.append(f"{where}: {t['columns']} columns do not fit; it scrolls sideways")
        if width < 768 and not relaxed and t["scrolls"]:
            problems.append(f"{where}: scrolls sideways instead of folding")
    return problems


def primary_problems(page: Page, name: str, selector: str | None, width: int) -> list[str]:
    if selector is None:
        return []
    target = page.locator(selector).first
    if target.count() == 0:
        return [f"{name} @{width}: no primary action {selector!r}"]
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    if not target.is_visible() or box is None:
        return [f"{name} @{width}: primary action {selector!r} is not visible"]
    if box["x"] < -1 or box["x"] + box["width"] > width + 1:
        return [f"{name} @{width}: primary action {selector!r} is outside the viewport"]
    return []


def nav_problems(page: Page, name: str, width: int) -> list[str]:
    header = page.locator("header.topbar")
    if header.count() == 0:
        return []  # the join page has its own plain header
    height = header.bounding_box()["height"]
    if width < 768:
        problems = []
        if height > 100:
            problems.append(
                f"{name} @{width}: the navigation is {height:.0f}px tall (one row is at most 100)"
            )
        menu = page.locator("header [data-nav-menu] > summary")
        if menu.count():
            brand = page.locator("header .brand").bounding_box()
            toggle = menu.bounding_box() if menu.is_visible() else None
            if toggle is None:
                problems.append(f"{name} @{width}: no Menu toggle")
            elif toggle["y"] > brand["y"] + brand["height"]:
                problems.append(f"{name} @{width}: the Menu toggle sits on a second row")
        return problems
    problems = []
    subnav = page.locator("header .subnav")
    if subnav.count() and not subnav.is_visible():
        problems.append(f"{name} @{width}: the section links are hidden on a wide screen")
    if page.locator("header [data-nav-menu]").count() and page.locator("header [data-nav-menu]").is_visible():
        problems.append(f"{name} @{width}: the phone's Menu toggle shows on a wide screen")
    return problems


def check(page: Page, name: str, path: str, primary: str | None, width: int, live_server) -> list[str]:
    response = page.goto(live_server.url + path)
    assert response is not None and response.status == 200, (
        f"{name}: {path} answered {response and response.status}"
    )
    expect(page.locator("main h1").first).to_be_visible()
    problems = layout_problems(page)
    problems += table_problems(page, name, width)
    problems += nav_problems(page, name, width)
    problems += primary_problems(page, name, primary, width)
    screenshot(page, f"responsive/{width}/{re.sub(r'[^a-z0-9]+', '-', name)}.png")
    return problems


@pytest.mark.parametrize("width", [375, 1280])
def test_every_page_fits_and_shows_its_key_columns_and_primary_action(browser, live_server, width):
    s = seed()
    errors: list[str] = []
    problems: list[str] = []
    context = browser.new_context(user_agent=DESKTOP_UA, viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))

        # Signed out: the panel's and the portal's sign-in pages and the join page.
        problems += check(
            page, "panel login", "/panel/login/", "main button[type=submit]", width, live_server
        )
        problems += check(
            page, "portal login", "/portal/login/", "main button[type=submit]", width, live_server
        )
        problems += check(page, "join", "/join/acme/", "main form button[type=submit]", width, live_server)
        token = link_create(purpose="login", email=s.active.email, now=timezone.now())
        problems += check(
            page, "portal magic", f"/portal/login/{token}/", "main button[type=submit]", width, live_server
        )

        panel_login(page, live_server, "admin", PASSWORD)
        for name, path, primary in panel_pages(s):
            problems += check(page, name, path, primary, width, live_server)

        if width < 768:
            # The list comes straight after a folded filter block, not 800 px down.
            page.goto(f"{live_server.url}/panel/p/acme/commissions/")
            expect(page.locator("details.filters-box")).not_to_have_attribute("open", "")
            top = page.locator("#commission-table").bounding_box()["y"]
            assert top < 450, f"the commissions list starts {top:.0f}px down"
            # The menu opens in place and holds every section.
            page.locator("header [data-nav-menu] > summary").click()
            expect(page.locator("header [data-nav-menu] a", has_text="Activity")).to_be_visible()
        else:
            page.goto(f"{live_server.url}/panel/p/acme/commissions/")
            expect(page.get_by_label("Affiliate code or id")).to_be_visible()  # filters shown, no toggle

        context.clear_cookies()
        token = link_create(purpose="login", email=s.active.email, now=timezone.now())
        portal_confirm_link(page, f"{live_server.url}/portal/login/{token}/")
        for name, path, primary in PORTAL_PAGES:
            problems += check(page, name, path, primary, width, live_server)
    finally:
        context.close()
    assert errors == [], f"JavaScript errors: {errors}"
    assert problems == [], "\n".join(problems)
