"""Panel: the program's refer-a-friend settings, customer referrers marked in the affiliates list,
and their account credits on their page (issue 16, item 4)."""

import pytest
from django.test import Client
from django.utils import timezone

from affiliates.models import Program
from affiliates.referrers import referrer_enrol
from commissions.models import Commission
from payouts.models import CustomerCredit
from refapp.models import Actor, AuditLog
from tests.factories import AffiliateFactory, CommissionFactory
from tests.helpers import staff_client_with_role

URL = "/panel/p/acme/settings/customer-referrals/"
SETTINGS = {
    "customer_referrals": "on",
    "customer_reward_kind": "credit",
    "customer_reward_type": "fixed",
    "amount": "20.00",
    "rate": "",
    "customer_reward_max_per_year": "5",
    "lifetime_cap": "100.00",
}


def test_the_settings_page_shows_and_saves_the_customer_referrer_settings(staff_client, program):
    page = staff_client.get("/panel/p/acme/settings/")
    html = page.content.decode()
    assert page.status_code == 200
    for name in ("customer_referrals", "customer_reward_kind", "customer_reward_type", "lifetime_cap"):
        assert f'name="{name}"' in html
    response = staff_client.post(URL, SETTINGS)
    assert response.status_code == 302 and response["Location"] == "/panel/p/acme/settings/"
    program = Program.objects.get(pk=program.pk)
    assert program.customer_referrals is True
    assert (program.customer_reward_kind, program.customer_reward_type) == ("credit", "fixed")
    assert program.customer_reward_amount_cents == 2000
    assert program.customer_reward_max_per_year == 5
    assert program.customer_reward_lifetime_cap_cents == 10_000
    assert AuditLog.objects.filter(action="program.updated").exists()
    again = staff_client.get("/panel/p/acme/settings/").content.decode()
    assert 'value="20.00"' in again and 'value="100.00"' in again

    staff_client.post(
        URL,
        {
            **SETTINGS,
            "customer_reward_kind": "cash",
            "customer_reward_type": "percent",
            "rate": "12.5",
            "amount": "",
            "customer_reward_max_per_year": "",
            "lifetime_cap": "",
        },
    )
    program.refresh_from_db()
    assert (program.customer_reward_kind, program.customer_reward_rate_bp) == ("cash", 1250)
    assert program.customer_reward_max_per_year is None and program.customer_reward_lifetime_cap_cents is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": ""}, "amount"),
        ({"amount": "twenty"}, "amount"),
        ({"customer_reward_type": "percent", "rate": ""}, "rate"),
        ({"customer_reward_type": "percent", "rate": "150"}, "rate"),
        ({"lifetime_cap": "-5"}, "lifetime_cap"),
        ({"customer_reward_max_per_year": "0"}, "customer_reward_max_per_year"),
        ({"customer_reward_kind": "gold"}, "customer_reward_kind"),
    ],
)
def test_invalid_settings_are_form_errors_and_change_nothing(staff_client, program, change, field):
    response = staff_client.post(URL, {**SETTINGS, **change})
    assert response.status_code == 400
    assert response.context["referral_form"].errors.get(field)
    assert Program.objects.get(pk=program.pk).customer_referrals is False


def test_only_the_programs_admins_change_the_settings(program, other_staff_client):
    viewer = staff_client_with_role(program, "viewer")
    manager = staff_client_with_role(program, "manager", username="manager")
    assert other_staff_client.post(URL, SETTINGS).status_code == 404
    assert viewer.post(URL, SETTINGS).status_code in (403, 404)
    assert manager.post(URL, SETTINGS).status_code in (403, 404)
    anonymous = Client().post(URL, SETTINGS)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/panel/login/")
    assert Program.objects.get(pk=program.pk).customer_referrals is False


@pytest.fixture
def customer_referrer(program):
    program.customer_referrals = True
    program.save()
    return referrer_enrol(
        program=program,
        livemode=True,
        email="ann@customer.example",
        customer_id="cus_ann",
        name="Ann Customer",
        actor=Actor("test"),
    )[0]


def test_the_affiliates_list_marks_and_filters_customer_referrers(staff_client, program, customer_referrer):
    AffiliateFactory(program=program, name="John Partner", code="JOHN")
    everyone = staff_client.get("/panel/p/acme/affiliates/").content.decode()
    assert "Ann Customer" in everyone and "John Partner" in everyone
    assert 'class="badge customer"' in everyone
    customers = staff_client.get("/panel/p/acme/affiliates/?kind=customer").content.decode()
    assert "Ann Customer" in customers and "John Partner" not in customers
    partners = staff_client.get("/panel/p/acme/affiliates/?kind=affiliate").content.decode()
    assert "John Partner" in partners and "Ann Customer" not in partners


def test_the_referrers_page_lists_their_credits_with_status(
    staff_client, program, customer_referrer, other_staff_client
):
    reward = CommissionFactory(affiliate=customer_referrer, amount_cents=2000, status="paid")
    CustomerCredit.objects.create(
        program=program,
        affiliate=customer_referrer,
        commission=reward,
        kind="credit",
        amount_cents=2000,
        currency="USD",
        stripe_customer_id="cus_ann",
        status="done",
        stripe_transaction_id="cbtxn_123",
        created_at=timezone.now(),
    )
    url = f"/panel/p/acme/affiliates/{customer_referrer.public_id}/"
    html = staff_client.get(url).content.decode()
    assert "customer referrer" in html and 'id="customer-credits"' in html
    assert "cbtxn_123" in html and "In the customer&#x27;s balance" in html and "20.00" in html
    assert other_staff_client.get(url).status_code == 404
    assert Commission.objects.filter(affiliate=customer_referrer).count() == 1
