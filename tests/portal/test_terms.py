"""An affiliate's commission terms, on the join page and in the portal, from the rules the
conversion pipeline applies (commissions.calculation.choose_scope): the affiliate's own rules,
else their active group's, else the program's."""

import re

import pytest
from django.test import Client

from commissions.models import CommissionRule
from refapp.portal.figures import commission_terms, rule_terms
from tests.conftest import portal_login
from tests.factories import AffiliateFactory, CommissionRuleFactory, PartnerGroupFactory

pytestmark = pytest.mark.django_db


def terms_text(html: str) -> str:
    section = re.search(r"<section class=\"terms\".*?</section>", html, re.S)
    assert section, "no terms section"
    return re.sub(r"[ \t\n]+", " ", re.sub(r"<[^>]+>", "", section.group(0)))  # keeps no-break spaces


@pytest.fixture
def program_terms(program, sale_rule):
    program.hold_days, program.cookie_days, program.payout_day = 45, 60, 3
    program.minimum_payout_cents = 10000
    program.save()
    CommissionRuleFactory(program=program, event_name="signup", type="fixed", rate_bp=None, amount_cents=500)
    return program


@pytest.fixture
def vip(program_terms):
    group = PartnerGroupFactory(program=program_terms, name="VIP")
    CommissionRuleFactory(program=program_terms, group=group, event_name="sale", type="percent", rate_bp=3000)
    return group


def test_the_join_page_states_the_programs_terms(client, program_terms, vip):
    response = client.get("/join/acme/")
    assert response.status_code == 200
    text = terms_text(response.content.decode())
    assert "20 % of each sale." in text
    assert "5.00 USD per signup." in text
    assert "30 %" not in text  # a group's rate is not what a newcomer gets
    assert "for 60 days after their last click" in text
    assert "held 45 days (the refund window)" in text
    assert "paid monthly on the 3rd once the balance reaches 100.00\u00a0USD" in text


def test_the_portal_shows_the_group_override(program_terms, vip):
    member = AffiliateFactory(program=program_terms, code="VIPPY", email="v@partner.example", group=vip)
    text = terms_text(portal_login(Client(), member).get("/portal/").content.decode())
    assert "Your commission terms" in text
    assert "30 % of each sale (the VIP group's rate)." in text
    assert "20 %" not in text
    assert "5.00 USD per signup." in text  # the group has no signup rule: the program's applies
    assert "held 45 days" in text and "on the 3rd" in text


def test_a_deactivated_group_falls_back_to_the_program_rate(program_terms, vip):
    vip.is_active = False
    vip.save()
    member = AffiliateFactory(program=program_terms, group=vip)
    sale = next(r for r in commission_terms(program_terms, member)["rules"] if r["event"] == "sale")
    assert (sale["scope"], sale["lines"]) == ("program", ["20 % of each sale"])


def test_the_affiliates_own_rule_wins_and_rules_at_one_scope_stack(program_terms, vip, affiliate):
    affiliate.group = vip
    affiliate.save()
    CommissionRuleFactory(
        program=program_terms, affiliate=affiliate, event_name="sale", type="percent", rate_bp=3500
    )
    CommissionRuleFactory(
        program=program_terms,
        affiliate=affiliate,
        event_name="sale",
        type="fixed",
        rate_bp=None,
        amount_cents=1000,
        first_event_only=True,
    )
    sale = next(r for r in commission_terms(program_terms, affiliate)["rules"] if r["event"] == "sale")
    assert sale["scope"] == "affiliate"
    assert sale["lines"] == ["35 % of each sale", "10.00 USD per sale; on each customer's first sale only"]


def test_an_inactive_rule_and_a_test_mode_rule_are_not_terms(program, sale_rule, affiliate):
    CommissionRuleFactory(program=program, event_name="trial", type="percent", rate_bp=100, is_active=False)
    CommissionRuleFactory(program=program, event_name="lead", type="percent", rate_bp=100, livemode=False)
    assert [r["event"] for r in commission_terms(program, affiliate)["rules"]] == ["sale"]


def test_rule_terms_are_pluralised(program):
    rule = CommissionRule(
        program=program, event_name="renewal", type="percent", rate_bp=1250, duration_months=1, max_events=1
    )
    assert rule_terms(rule, "USD") == (
        "12.5 % of each renewal; for 1 month after the customer was referred; for at most 1 renewal per customer"
    )
    rule.duration_months, rule.max_events = 12, 3
    rule.tiers = [{"min_cents": 100000, "rate_bp": 2000}]
    assert rule_terms(rule, "USD") == (
        "12.5 % of each renewal; 20 % once your referred revenue in a calendar month reaches 1,000.00 USD; "
        "for 12 months after the customer was referred; for at most 3 renewals per customer"
    )


def test_no_rules_yet_says_so(client, program):
    assert "No commission is set up yet" in terms_text(client.get("/join/acme/").content.decode())


def test_an_applicant_waiting_for_review_sees_the_terms_too(program_terms):
    applicant = AffiliateFactory(program=program_terms, status="pending", email="new@partner.example")
    html = portal_login(Client(), applicant).get("/portal/").content.decode()
    assert 'data-notice="pending"' in html
    assert "20 % of each sale." in terms_text(html)
