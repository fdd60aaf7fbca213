from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from commissions.calculation import add_months, rule_amount, tier_rate
from commissions.models import Commission
from commissions.rules import validate_rule
from refapp.money import MAX_AMOUNT_MINOR
from tests.factories import AffiliateFactory, CommissionRuleFactory, PartnerGroupFactory

pytestmark = pytest.mark.usefixtures("event_write_path")


def post_sale(api_client, order_id, amount=10000, event="sale", **extra):
    body = {
        "event": event,
        "order_id": order_id,
        "amount_cents": amount,
        "referral_code": "JOHN",
        "customer_id": "cus_1",
        **extra,
    }
    response = api_client.post("/api/v1/events", body)
    assert response.status_code == 201, response.content
    return [c["amount_cents"] for c in response.json()["commissions"]]


# --- arithmetic properties ------------------------------------------------------------------

amounts = st.integers(min_value=0, max_value=MAX_AMOUNT_MINOR)
rates = st.integers(min_value=0, max_value=10_000)


@given(amount=amounts, rate=rates)
def test_percent_is_never_negative_nor_more_than_the_amount(amount, rate):
    paid = rule_amount(rule_type="percent", event_amount_cents=amount, rate_bp=rate, fixed_cents=None)
    assert 0 <= paid <= amount


@given(amount=amounts, rate=rates)
def test_percent_rounds_half_up_exactly_once(amount, rate):
    paid = rule_amount(rule_type="percent", event_amount_cents=amount, rate_bp=rate, fixed_cents=None)
    exact_numerator = amount * rate  # the exact value is exact_numerator / 10000
    # paid is the nearest integer, with halves going up: |paid - exact| <= 1/2, and = 1/2 only upwards
    assert abs(paid * 10_000 - exact_numerator) <= 5_000
    if paid * 10_000 - exact_numerator == -5_000:
        raise AssertionError("a half was rounded down")


@given(amount=amounts, fixed=st.integers(min_value=0, max_value=MAX_AMOUNT_MINOR))
def test_fixed_pays_the_fixed_amount(amount, fixed):
    assert rule_amount(rule_type="fixed", event_amount_cents=amount, rate_bp=None, fixed_cents=fixed) == fixed


@given(
    base=rates,
    tiers=st.lists(
        st.fixed_dictionaries({"min_cents": st.integers(0, 10**9), "rate_bp": rates}),
        max_size=5,
        unique_by=lambda t: t["min_cents"],
    ),
    revenue=st.integers(0, 2 * 10**9),
)
def test_tier_is_the_highest_reached(base, tiers, revenue):
    rate, tier = tier_rate(base, tiers, revenue)
    reached = [t for t in tiers if t["min_cents"] <= revenue]
    if not reached:
        assert rate == base and tier is None
    else:
        assert tier == max(reached, key=lambda t: t["min_cents"]) and rate == tier["rate_bp"]


def test_rounding_examples():
    assert (
        rule_amount(rule_type="percent", event_amount_cents=5, rate_bp=1000, fixed_cents=None) == 1
    )  # 0.5 -> 1
    assert (
        rule_amount(rule_type="percent", event_amount_cents=4, rate_bp=1000, fixed_cents=None) == 0
    )  # 0.4 -> 0
    assert (
        rule_amount(rule_type="percent", event_amount_cents=15, rate_bp=1000, fixed_cents=None) == 2
    )  # 1.5 -> 2
    assert rule_amount(rule_type="percent", event_amount_cents=9999, rate_bp=3333, fixed_cents=None) == 3333


def test_add_months_clamps_to_month_end():
    moment = timezone.now().replace(year=2026, month=1, day=31)
    assert add_months(moment, 1).day == 28 and add_months(moment, 1).month == 2
    assert add_months(moment, 12).year == 2027


# --- scope and stacking ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_most_specific_scope_wins(api_client, program, affiliate):
    group = PartnerGroupFactory(program=program)
    affiliate.group = group
    affiliate.save()
    CommissionRuleFactory(program=program, rate_bp=1000)
    CommissionRuleFactory(program=program, rate_bp=2000, group=group)
    assert post_sale(api_client, "A") == [2000]
    CommissionRuleFactory(program=program, rate_bp=3000, affiliate=affiliate)
    assert post_sale(api_client, "B") == [3000]


@pytest.mark.django_db
def test_group_rules_do_not_apply_to_other_groups(api_client, program, affiliate):
    other_group = PartnerGroupFactory(program=program)
    CommissionRuleFactory(program=program, rate_bp=1000)
    CommissionRuleFactory(program=program, rate_bp=5000, group=other_group)
    assert post_sale(api_client, "A") == [1000]


@pytest.mark.django_db
def test_hybrid_rules_at_one_scope_stack(api_client, program, affiliate):
    CommissionRuleFactory(
        program=program, type="fixed", rate_bp=None, amount_cents=500, first_event_only=True
    )
    CommissionRuleFactory(program=program, rate_bp=1000)
    assert sorted(post_sale(api_client, "A")) == [500, 1000]
    assert post_sale(api_client, "B") == [1000]  # the bonus was for the first sale only


@pytest.mark.django_db
def test_rules_match_event_name(api_client, program, affiliate):
    CommissionRuleFactory(program=program, event_name="signup", type="fixed", rate_bp=None, amount_cents=200)
    assert post_sale(api_client, "S1", amount=0, event="signup") == [200]
    assert post_sale(api_client, "S2", amount=5000) == []  # no sale rule


@pytest.mark.django_db
def test_inactive_rules_are_ignored(api_client, program, affiliate):
    CommissionRuleFactory(program=program, rate_bp=1000, is_active=False)
    assert post_sale(api_client, "A") == []


@pytest.mark.django_db
def test_max_events_per_referral(api_client, program, affiliate):
    CommissionRuleFactory(program=program, rate_bp=1000, max_events=2)
    assert [post_sale(api_client, f"O{i}") for i in range(3)] == [[1000], [1000], []]
    skipped = Commission.objects.order_by("pk").last().inputs
    assert skipped["amount_cents"] == 1000


@pytest.mark.django_db
def test_duration_months_after_referral_began(api_client, program, affiliate):
    CommissionRuleFactory(program=program, rate_bp=1000, duration_months=12)
    start = timezone.now() - timedelta(days=400)
    with time_machine.travel(start, tick=False):
        assert post_sale(api_client, "O1") == [1000]
    with time_machine.travel(start + timedelta(days=200), tick=False):
        assert post_sale(api_client, "O2") == [1000]
    with time_machine.travel(start + timedelta(days=370), tick=False):
        assert post_sale(api_client, "O3") == []


@pytest.mark.django_db
def test_monthly_revenue_tiers(api_client, program, affiliate):
    CommissionRuleFactory(
        program=program,
        rate_bp=1000,
        tiers=[{"min_cents": 20000, "rate_bp": 2000}, {"min_cents": 50000, "rate_bp": 3000}],
    )
    with time_machine.travel("2026-10-10T12:00:00Z", tick=False):
        assert post_sale(api_client, "O1", amount=10000) == [1000]  # month revenue 100.00
        assert post_sale(api_client, "O2", amount=10000) == [2000]  # 200.00 reaches tier 1
        assert post_sale(api_client, "O3", amount=30000) == [9000]  # 500.00 reaches tier 2
    with time_machine.travel("2026-11-02T12:00:00Z", tick=False):
        assert post_sale(api_client, "O4", amount=10000) == [1000]  # a new month starts over
    commission = Commission.objects.get(event__order_id="O3")
    assert commission.inputs["monthly_revenue_cents"] == 50000 and commission.inputs["tier"] == {
        "min_cents": 50000,
        "rate_bp": 3000,
    }


@pytest.mark.django_db
def test_rule_change_does_not_touch_existing_commissions(api_client, program, affiliate):
    rule = CommissionRuleFactory(program=program, rate_bp=1000)
    post_sale(api_client, "O1")
    rule.is_active = False
    rule.save()
    assert Commission.objects.get().rule == rule and Commission.objects.get().amount_cents == 1000


@pytest.mark.django_db
def test_each_affiliate_gets_own_rules(api_client, program, affiliate):
    vip = AffiliateFactory(program=program, code="VIP")
    CommissionRuleFactory(program=program, rate_bp=1000)
    CommissionRuleFactory(program=program, rate_bp=4000, affiliate=vip)
    assert post_sale(api_client, "A", referral_code="VIP", customer_id="cus_vip") == [4000]
    assert post_sale(api_client, "B", customer_id="cus_2") == [1000]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"type": "percent", "rate_bp": 10001}, "rate_bp"),
        ({"type": "percent", "rate_bp": None}, "rate_bp"),
        ({"type": "fixed", "amount_cents": None}, "amount_cents"),
        ({"type": "fixed", "amount_cents": 500, "currency": "EUR"}, "currency"),
        (
            {
                "type": "percent",
                "rate_bp": 100,
                "tiers": [{"min_cents": 1, "rate_bp": 5}, {"min_cents": 1, "rate_bp": 6}],
            },
            "tiers",
        ),
        ({"type": "percent", "rate_bp": 100, "tiers": [{"min_cents": 1, "rate_bp": 10001}]}, "tiers"),
        ({"type": "bogus"}, "type"),
    ],
)
def test_rule_validation_explains_mistakes(kwargs, field):
    args = {
        "event_name": "sale",
        "rate_bp": None,
        "amount_cents": None,
        "tiers": None,
        "program_currency": "USD",
        **kwargs,
    }
    errors = validate_rule(**args)
    assert field in errors and errors[field][0]
