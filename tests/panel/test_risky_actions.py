"""Risky actions come last and confirm with the count and the amount; the server refuses the unsafe ones."""

import pytest
from django.utils import timezone

from commissions.models import Commission
from commissions.services import InvalidCommissionAction, commission_set_status
from payouts.models import Payout
from refapp.models import Actor
from tests.factories import AffiliateFactory, CommissionFactory

pytestmark = pytest.mark.django_db

BULK = "/panel/p/acme/commissions/bulk/"
RUN = "/panel/p/acme/payouts/run/"


@pytest.fixture
def clawback(affiliate):
    """A paid commission and the negative approved row a refund created after payment."""
    paid = CommissionFactory(affiliate=affiliate, amount_cents=2000, status="paid")
    return CommissionFactory(
        affiliate=affiliate,
        event=paid.event,
        kind="reversal",
        reverses=paid,
        amount_cents=-2000,
        status="approved",
    )


def test_a_clawback_offers_no_reject(staff_client, clawback):
    text = staff_client.get(f"/panel/p/acme/commissions/{clawback.public_id}/").text
    assert 'value="reject"' not in text
    assert "cannot be rejected" in text


def test_an_ordinary_commission_offers_reject_behind_a_disclosure(staff_client, affiliate):
    pending = CommissionFactory(affiliate=affiliate, amount_cents=1980)
    text = staff_client.get(f"/panel/p/acme/commissions/{pending.public_id}/").text
    assert text.index("Approve 19.80 USD now") < text.index('class="danger-zone"')
    assert "Reject 19.80 USD for John" in text


def test_the_server_refuses_to_reject_a_clawback(staff_client, clawback):
    body = {"action": "reject", "ids": [clawback.public_id], "reason": "x"}
    confirm = staff_client.post(BULK, body)
    assert "Reject 0 commissions totalling 0.00 USD?" in confirm.text
    assert "a clawback is never rejected" in confirm.text
    # Posting the reject anyway, as a hand-made request would, changes nothing.
    response = staff_client.post(BULK, {**body, "confirmed": "1"}, follow=True)
    assert "0 commissions rejected; 1 skipped" in response.text
    clawback.refresh_from_db()
    assert clawback.status == "approved"
    with pytest.raises(InvalidCommissionAction):
        commission_set_status(
            commission=clawback, status="rejected", reason="x", actor=Actor.system(), now=timezone.now()
        )
    clawback.refresh_from_db()
    assert clawback.status == "approved"


def test_a_pending_reversal_may_still_be_approved_early(affiliate):
    original = CommissionFactory(affiliate=affiliate, amount_cents=2000)
    reversal = CommissionFactory(
        affiliate=affiliate, event=original.event, kind="reversal", reverses=original, amount_cents=-500
    )
    done = commission_set_status(
        commission=reversal, status="approved", reason="early", actor=Actor.system(), now=timezone.now()
    )
    assert done.status == Commission.Status.APPROVED


def test_suspend_sits_in_the_danger_zone_after_the_page(staff_client, affiliate):
    text = staff_client.get(f"/panel/p/acme/affiliates/{affiliate.public_id}/").text
    danger = text.index('id="danger-zone"')
    assert text.index("Suspend John…") > text.index("<h2>Performance</h2>")
    assert danger > text.index("Recent commissions")
    assert 'value="suspended"' in text[danger:] and 'value="suspended"' not in text[:danger]


def test_suspend_without_a_reason_changes_nothing(staff_client, affiliate):
    staff_client.post(f"/panel/p/acme/affiliates/{affiliate.public_id}/status/", {"status": "suspended"})
    affiliate.refresh_from_db()
    assert affiliate.status == "active"


@pytest.fixture
def payable(program):
    """Two active PayPal affiliates with approved commissions above the minimum."""
    rows = []
    for n, cents in enumerate([150_000, 192_000]):
        a = AffiliateFactory(program=program, payout_method="paypal", paypal_email=f"p{n}@pp.example")
        rows.append(CommissionFactory(affiliate=a, amount_cents=cents, status="approved"))
    return rows


def test_run_payouts_confirms_with_the_count_and_the_amount(staff_client, payable):
    listing = staff_client.get("/panel/p/acme/payouts/").text
    assert f'href="{RUN}"' in listing and "Pay 2 affiliates 3,420.00 USD?" in listing
    confirm = staff_client.get(RUN)
    assert confirm.status_code == 200
    assert "Pay 2 affiliates 3,420.00 USD?" in confirm.text
    assert "Yes, pay 2 affiliates 3,420.00 USD" in confirm.text
    assert Payout.objects.count() == 0  # looking is not running


def test_run_without_the_confirmed_figures_is_refused(staff_client, payable):
    response = staff_client.post(RUN, follow=True)
    assert "Confirm the run on this page first" in response.text
    assert Payout.objects.count() == 0


def test_run_whose_plan_changed_since_the_confirmation_is_refused(staff_client, payable):
    confirmed = {"expected_count": 2, "expected_total_cents": 342_000}
    CommissionFactory(affiliate=payable[0].affiliate, amount_cents=1_000, status="approved")
    response = staff_client.post(RUN, confirmed, follow=True)
    assert "changed since you confirmed" in response.text
    assert Payout.objects.count() == 0
    response = staff_client.post(RUN, {"expected_count": 2, "expected_total_cents": 343_000})
    assert response.status_code == 302
    assert sorted(Payout.objects.values_list("amount_cents", flat=True)) == [151_000, 192_000]


def test_only_admins_reach_the_confirm_step(program, payable, other_staff_client):
    from affiliates.models import ProgramStaff
    from tests.helpers import staff_client_with_role

    manager = staff_client_with_role(program, ProgramStaff.Role.MANAGER, username="manager")
    assert manager.get(RUN).status_code == 404
    assert other_staff_client.get(RUN).status_code == 404
    assert manager.post(RUN, {"expected_count": 2, "expected_total_cents": 342_000}).status_code == 404
    assert Payout.objects.count() == 0


def test_bulk_review_confirms_with_the_count_and_the_total(staff_client, affiliate):
    rows = [CommissionFactory(affiliate=affiliate, amount_cents=cents) for cents in (1_000, 2_345, 40_000)]
    paid = CommissionFactory(affiliate=affiliate, amount_cents=9_999, status="paid")
    ids = [c.public_id for c in [*rows, paid]]
    confirm = staff_client.post(BULK, {"action": "approve", "ids": ids, "next": "/panel/p/acme/commissions/"})
    assert confirm.status_code == 200
    assert "Approve 3 commissions totalling 433.45 USD?" in confirm.text
    assert "1 of the selected row will not change" in confirm.text
    assert paid.public_id not in confirm.text.split("<form")[-1]  # only the rows that change are re-posted
    assert {c.status for c in Commission.objects.filter(pk__in=[c.pk for c in rows])} == {"pending"}
    done = staff_client.post(
        BULK, {"action": "approve", "ids": [c.public_id for c in rows], "confirmed": "1"}, follow=True
    )
    assert "3 commissions approved." in done.text
    assert {c.status for c in Commission.objects.filter(pk__in=[c.pk for c in rows])} == {"approved"}


def test_destructive_buttons_ask_with_what_they_destroy(staff_client, program):
    from affiliates.services import apikey_create
    from tests.factories import CommissionRuleFactory

    apikey_create(program=program, name="Zapier")
    CommissionRuleFactory(program=program)
    keys = staff_client.get("/panel/p/acme/keys/").text
    assert 'data-confirm="Revoke the live key ‘Zapier’' in keys
    rules = staff_client.get("/panel/p/acme/rules/").text
    assert (
        'data-confirm="Deactivate this rule? New conversions stop earning by it; the 0 commissions' in rules
    )
