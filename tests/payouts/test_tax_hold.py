"""A program that requires tax details holds the payouts of affiliates without them: the money is
carried in the approved balance and paid by the first run after the details are entered."""

from datetime import timedelta

import pytest
from django.utils import timezone

from affiliates.portal_services import TaxDetails, affiliate_tax_details_set
from commissions.models import Commission
from commissions.stats import affiliate_balances
from payouts.models import Payout
from payouts.services import TAX_HOLD, payout_plan, payouts_create
from tests.factories import AffiliateFactory

pytestmark = pytest.mark.django_db

HELD = "held: tax details missing"


@pytest.fixture
def taxed_program(program):
    program.require_tax_details = True
    program.save()
    return program


def test_an_affiliate_without_tax_details_is_held_then_paid_with_the_carried_amount(
    taxed_program, affiliate, portal_client, staff_client, approved
):
    affiliate.payout_method, affiliate.paypal_email = "paypal", "john@pay.example"
    affiliate.save()
    mary = AffiliateFactory(
        program=taxed_program, code="MARY", name="Mary", payout_method="paypal", paypal_email="m@pay.example"
    )
    affiliate_tax_details_set(
        affiliate=mary,
        details=TaxDetails(legal_name="Mary Major", country="FR", is_business=True, tax_id="FR40303265045"),
        upload=None,
        now=timezone.now(),
    )
    held = approved(affiliate, 7_000)
    approved(mary, 6_000)
    now = timezone.now()

    plan = payout_plan(program=taxed_program, now=now)
    reasons = {line.affiliate.code: line.reason for line in plan.lines}
    assert TAX_HOLD == HELD and reasons == {"JOHN": HELD, "MARY": ""}
    assert HELD in staff_client.get("/panel/p/acme/payouts/").content.decode()
    assert HELD in portal_client.get("/portal/payouts/").content.decode()
    assert HELD in portal_client.get("/portal/").content.decode()

    [paid] = payouts_create(program=taxed_program, now=now)
    assert paid.affiliate_id == mary.pk
    held.refresh_from_db()
    assert held.status == Commission.Status.APPROVED  # carried, not lost
    assert affiliate_balances(affiliate)["approved_cents"] == 7_000

    # John enters his tax details in the portal; the hold is lifted at once.
    response = portal_client.post(
        "/portal/settings/tax/",
        {"legal_name": "John Doe", "country": "DE", "is_business": "on", "tax_id": "DE 136 695 976"},
    )
    assert response.status_code == 302
    assert HELD not in portal_client.get("/portal/payouts/").content.decode()
    approved(affiliate, 3_000)

    later = now + timedelta(days=32)
    plan = payout_plan(program=taxed_program, now=later)
    assert {line.affiliate.code: line.reason for line in plan.lines} == {"JOHN": ""}
    [payout] = payouts_create(program=taxed_program, now=later)
    assert (payout.affiliate_id, payout.amount_cents) == (affiliate.pk, 10_000)  # 70.00 carried + 30.00 new
    assert set(payout.items.values_list("commission_id", flat=True)) >= {held.pk}
    assert Payout.objects.filter(affiliate=affiliate).count() == 1


def test_without_the_setting_nobody_is_held(program, affiliate, approved, portal_client):
    affiliate.payout_method, affiliate.paypal_email = "paypal", "john@pay.example"
    affiliate.save()
    approved(affiliate, 7_000)
    [line] = payout_plan(program=program, now=timezone.now()).lines
    assert line.eligible
    assert HELD not in portal_client.get("/portal/payouts/").content.decode()
