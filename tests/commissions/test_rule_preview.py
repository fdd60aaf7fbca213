"""The rule preview: what a draft rule would have paid last month, from hand-made events."""

from datetime import UTC, datetime

import pytest
import time_machine

from commissions.models import CommissionRule
from refapp.panel.preview import rule_preview
from tests.factories import (
    AffiliateFactory,
    CommissionFactory,
    EventFactory,
    PartnerGroupFactory,
    ReferralFactory,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)  # "last month" is October 2026
NEW = "/panel/p/acme/rules/new/"


def at(month, day):
    return datetime(2026, month, day, 10, tzinfo=UTC)


@pytest.fixture
def data(program):
    group = PartnerGroupFactory(program=program, name="Creators")
    ann = AffiliateFactory(program=program, name="Ann", code="ANN")
    bob = AffiliateFactory(program=program, name="Bob", code="BOB", group=group)

    def referral(affiliate, created):
        return ReferralFactory(affiliate=affiliate, visitor_id=f"v-{affiliate.code}", created_at=created)

    def event(affiliate, ref, amount, when, *, name="sale", livemode=True):
        return EventFactory(
            affiliate=affiliate,
            referral=ref,
            livemode=livemode,
            name=name,
            amount_cents=amount,
            occurred_at=when,
            attribution="click",
        )

    ann_ref = referral(ann, at(9, 1))
    bob_ref = referral(bob, at(10, 1))
    event(ann, ann_ref, 10_000, at(9, 20))  # September: outside the month, but an earlier sale
    first_oct = event(ann, ann_ref, 20_000, at(10, 5))
    event(ann, ann_ref, 5_000, at(10, 20))
    event(bob, bob_ref, 10_000, at(10, 10))
    event(bob, bob_ref, 90_000, at(11, 2))  # this month: not previewed
    event(ann, ann_ref, 70_000, at(10, 6), name="signup")  # another event name (counts for tiers)
    event(ann, ann_ref, 80_000, at(10, 7), livemode=False)  # test mode: never
    EventFactory(
        program=program, amount_cents=50_000, occurred_at=at(10, 8), received_at=NOW
    )  # not attributed
    for amount, status in ((4_000, "pending"), (999, "rejected")):
        CommissionFactory(
            affiliate=ann,
            event=first_oct,
            amount_cents=amount,
            status=status,
            hold_until=NOW,
            created_at=at(10, 5),
        )
    return group, ann, bob


def draft(program, **fields):
    return CommissionRule(
        program=program, **{"event_name": "sale", "type": "percent", "rate_bp": 1000, **fields}
    )


def preview(program, **fields):
    return rule_preview(program=program, rule=draft(program, **fields), now=NOW)


def test_program_rule_pays_last_months_events_in_scope(program, data):
    _, ann, bob = data
    result = preview(program)
    assert (result.start, result.end) == (at(10, 1).replace(hour=0), at(11, 1).replace(hour=0))
    assert (result.events, result.paid_events, result.amount_cents) == (3, 3, 2_000 + 500 + 1_000)
    assert [(row.affiliate, row.events, row.amount_cents) for row in result.top] == [
        (ann, 2, 2_500),
        (bob, 1, 1_000),
    ]
    assert result.current_cents == 4_000 and result.affiliates == 2 and result.skipped == {}


def test_limits_skip_what_the_engine_would_skip(program, data):
    _, _, bob = data
    first_only = preview(program, first_event_only=True)  # Ann's October sales follow her September one
    assert (first_only.paid_events, first_only.amount_cents, first_only.skipped) == (
        1,
        1_000,
        {"first_event_only": 2},
    )
    one_month = preview(program, duration_months=1)  # Ann's referral is from September 1
    assert (one_month.amount_cents, one_month.skipped) == (1_000, {"duration_months_elapsed": 2})
    two_events = preview(program, max_events=2)  # Ann's second October sale is her third
    assert (two_events.amount_cents, two_events.skipped) == (2_000 + 1_000, {"max_events_reached": 1})


def test_scopes_and_fixed_amounts(program, data):
    group, ann, bob = data
    by_group = preview(program, group=group, type="fixed", rate_bp=None, amount_cents=700)
    assert (by_group.events, by_group.amount_cents, [r.affiliate for r in by_group.top]) == (1, 700, [bob])
    by_affiliate = preview(program, affiliate=ann)
    assert (by_affiliate.events, by_affiliate.amount_cents) == (2, 2_500)


def test_tiers_use_the_months_revenue_to_date(program, data):
    # Ann: 20,000 on Oct 5 (10 %), then the 70,000 signup on Oct 6 lifts her month to 90,000, so the
    # 5,000 sale on Oct 20 (month to date 95,000) earns the 20 % tier. Bob's 10,000 stays at 10 %.
    result = preview(program, tiers=[{"min_cents": 25_000, "rate_bp": 2000}])
    assert result.amount_cents == 2_000 + 1_000 + 1_000


def test_no_events_is_an_empty_preview(program, data):
    result = preview(program, event_name="renewal")
    assert (result.events, result.amount_cents, result.top) == (0, 0, [])


def _form(**overrides):
    body = {"event_name": "sale", "type": "percent", "rate": "10", "scope": "program", "preview": "1"}
    body.update(overrides)
    return body


def test_the_form_previews_without_saving(staff_client, program, data):
    with time_machine.travel(NOW, tick=False):
        response = staff_client.post(NEW, _form())
    assert response.status_code == 200 and CommissionRule.objects.count() == 0
    assert response.context["preview"].amount_cents == 3_500
    assert "35.00" in response.text.split('data-preview="amount">')[1][:30]
    assert "October 2026" in response.text


def test_an_invalid_draft_gets_form_errors_and_no_preview(staff_client, program, data):
    response = staff_client.post(NEW, _form(rate="150"))
    assert response.status_code == 200 and response.context["preview"] is None
    assert response.context["form"].errors and CommissionRule.objects.count() == 0
    assert "rule-preview" not in response.text


def test_editing_a_rule_previews_the_changes_without_replacing_it(staff_client, program, data, sale_rule):
    with time_machine.travel(NOW, tick=False):
        response = staff_client.post(f"/panel/p/acme/rules/{sale_rule.public_id}/", _form(rate="5"))
    assert response.status_code == 200 and response.context["preview"].amount_cents == 1_000 + 250 + 500
    assert list(CommissionRule.objects.values_list("pk", "is_active")) == [(sale_rule.pk, True)]
