"""The dashboards' charts and stat tiles in a real Chromium at a phone's width and a laptop's.

Every chart is drawn (a canvas with its Chart.js instance, the breakdowns loaded by htmx), no
JavaScript or console error happens, no stat tile breaks an amount from its currency or lets it
stick out, and nothing is wider than the viewport. Screenshots go to var/screenshots/.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from affiliates.magic import link_create
from affiliates.models import ProgramStaff
from affiliates.services import apikey_create
from tests.browser import test_flows
from tests.factories import AffiliateFactory, CommissionRuleFactory, PartnerGroupFactory, ProgramFactory
from tracking.models import Click

from .flows_helpers import layout_problems, panel_login, poll, portal_confirm_link, post_event, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


# `person` (a page in a new browser profile whose errors fail the test) is test_flows' fixture.
person = test_flows.person


@pytest.fixture
def trading_program(live_server):
    """Forty days of a program: clicks by campaign, sub id and source, large and small sales this
    week and last, a pending application (the needs-attention strip), a VIP group's rate."""
    program = ProgramFactory(slug="acme", name="Acme", website="https://acme.example")
    CommissionRuleFactory(program=program, event_name="sale", type="percent", rate_bp=2000)
    vip = PartnerGroupFactory(program=program, name="VIP")
    CommissionRuleFactory(program=program, group=vip, event_name="sale", type="percent", rate_bp=3000)
    _key, secret = apikey_create(program=program, mode="live", name="billing")
    user = User.objects.create_user("admin", "admin@acme.example", PASSWORD, is_staff=True)
    ProgramStaff.objects.create(program=program, user=user, role=ProgramStaff.Role.ADMIN)
    john = AffiliateFactory(
        program=program, code="JOHN", email="john@partner.example", status="active", group=vip
    )
    AffiliateFactory(program=program, code="MARY", status="pending")
    now = timezone.now()
    campaigns = ["spring-launch", "newsletter-week-49", "", "youtube-review"]
    clicks = [
        Click(
            program=program,
            affiliate=john,
            visitor_id=f"visitor-{n:03d}",
            created_at=now - timedelta(days=n, minutes=5),  # 40 days: some in the previous period
            landing_url="https://acme.example/pricing?ref=JOHN",
            utm_campaign=campaigns[n % 4],
            utm_source=["youtube", "newsletter", "", "twitter"][n % 4],
            sub_id=f"sub-{n % 3}",
            referrer="https://blog.example/post",
        )
        for n in range(40)
    ]
    Click.objects.bulk_create(clicks)
    for n, amount in enumerate([237200, 9900, 1234567, 4500, 99]):
        status, body = post_event(
            live_server,
            secret,
            {
                "event": "sale",
                "order_id": f"ORD-{n}",
                "visitor_id": f"visitor-{n:03d}",
                "amount_cents": amount,
                "currency": "USD",
                "occurred_at": (now - timedelta(days=n, minutes=4)).isoformat().replace("+00:00", "Z"),
            },
        )
        assert status == 201 and body["attributed"], body
    return program


# For each stat tile showing money: how many lines its text takes, and whether it sticks out.
_TILES_JS = """() => Array.from(document.querySelectorAll(".stat .value")).map((el) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const tops = new Set(Array.from(range.getClientRects()).map((r) => Math.round(r.top)));
  const tile = el.closest(".stat").getBoundingClientRect();
  const text = range.getBoundingClientRect();
  return {text: el.textContent, lines: tops.size, inside: text.right <= tile.right + 1 && text.left >= tile.left - 1};
})"""


def tile_problems(page: Page) -> list[str]:
    problems = []
    tiles = page.evaluate(_TILES_JS)
    assert tiles, f"{page.url}: no stat tiles"
    for tile in tiles:
        if "USD" in tile["text"] and "\u00a0USD" not in tile["text"]:
            problems.append(f"{page.url}: {tile['text']!r} is not joined to its currency")
        if tile["lines"] != 1:
            problems.append(f"{page.url}: {tile['text']!r} takes {tile['lines']} lines")
        if not tile["inside"]:
            problems.append(f"{page.url}: {tile['text']!r} sticks out of its tile")
    return problems


def charts_drawn(page: Page, at_least: int) -> None:
    """At least `at_least` canvases, every one drawn by Chart.js with something on it."""
    script = """() => {
      const canvases = Array.from(document.querySelectorAll("canvas[data-chart]"));
      return {count: canvases.length, drawn: canvases.every((c) => c._chart && c.width > 0 && c.height > 0)};
    }"""
    state = poll(
        lambda: (lambda s: s if s["count"] >= at_least and s["drawn"] else None)(page.evaluate(script)),
        timeout=15.0,
    )
    assert state, f"{page.url}: charts not drawn: {page.evaluate(script)}"


@pytest.mark.parametrize("width", [375, 1280])
def test_dashboards_and_reports_draw_their_charts_and_fit_the_screen(
    person, live_server, trading_program, width
):
    problems: list[str] = []
    admin = person(viewport={"width": width, "height": 900})
    panel_login(admin, live_server, "admin", PASSWORD)

    admin.goto(f"{live_server.url}/panel/p/acme/?range=30")
    expect(admin.locator("[data-attention-item=applications]")).to_have_text("1 pending application")
    expect(admin.locator("[data-stat=revenue]")).to_have_text("14,862.66\u00a0USD")
    charts_drawn(admin, 6)  # clicks, conversions, revenue per day; by campaign, sub id, source
    expect(admin.locator("[data-breakdown=campaign] canvas")).to_have_count(1)
    problems += tile_problems(admin) + layout_problems(admin)
    screenshot(admin, f"uia-panel-dashboard-{width}.png")

    for group_by, count in (("campaign", 3), ("day", 3), ("source", 3)):
        admin.goto(f"{live_server.url}/panel/p/acme/reports/?group_by={group_by}&range=30")
        charts_drawn(admin, count)
        problems += layout_problems(admin)
        screenshot(admin, f"uia-panel-reports-{group_by}-{width}.png")

    john = trading_program.affiliates.get(code="JOHN")
    admin.goto(f"{live_server.url}/panel/p/acme/affiliates/{john.public_id}/")
    charts_drawn(admin, 3)
    problems += tile_problems(admin) + layout_problems(admin)

    partner = person(viewport={"width": width, "height": 900})
    token = link_create(purpose="login", email="john@partner.example", now=timezone.now())
    portal_confirm_link(partner, f"{live_server.url}/portal/login/{token}/")
    charts_drawn(partner, 3)
    expect(partner.locator("[data-terms-event=sale]")).to_contain_text("30 % of each sale")
    problems += tile_problems(partner) + layout_problems(partner)
    screenshot(partner, f"uia-portal-dashboard-{width}.png")

    applicant = person(viewport={"width": width, "height": 900})
    applicant.goto(f"{live_server.url}/join/acme/")
    expect(applicant.locator("[data-terms-event=sale]")).to_contain_text("20 % of each sale")
    problems += layout_problems(applicant)
    screenshot(applicant, f"uia-join-{width}.png")

    assert problems == [], "\n".join(problems)
