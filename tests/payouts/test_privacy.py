"""Privacy requests: export an affiliate's or a referred customer's data, erase it with tombstones,
keep the money rows so balances and payouts still add up."""

import json

import pytest
from django.utils import timezone

from affiliates.models import PortalSession
from commissions.models import Commission
from commissions.services import balances
from payouts.models import Payout
from refapp.hashing import email_hash
from refapp.models import AuditLog
from tests.factories import AffiliateFactory, ClickFactory, CommissionFactory, EventFactory, PayoutFactory
from tracking.models import Click, Event

pytestmark = pytest.mark.django_db

PERSONAL = [
    "Mary Major",
    "mary@partner.example",
    "mary-blog.example",
    "pay-mary@partner.example",
    "acct_mary",
]


@pytest.fixture
def mary(program):
    mary = AffiliateFactory(
        program=program,
        code="MARY",
        name="Mary Major",
        email="mary@partner.example",
        website="https://mary-blog.example",
        paypal_email="pay-mary@partner.example",
        stripe_account_id="acct_mary",
    )
    PortalSession.objects.create(affiliate=mary, ip_hash="iphash-mary", created_at=timezone.now())
    paid = CommissionFactory(affiliate=mary, amount_cents=7_000, status=Commission.Status.PAID)
    CommissionFactory(affiliate=mary, amount_cents=2_500, status=Commission.Status.APPROVED)
    CommissionFactory(affiliate=mary, amount_cents=1_000)
    PayoutFactory(affiliate=mary, amount_cents=7_000, status=Payout.Status.PAID, paid_at=paid.created_at)
    return mary


def test_an_erased_affiliate_exports_no_personal_data_and_still_adds_up(api_client, mary):
    before = api_client.get(f"/api/v1/privacy/export?affiliate={mary.public_id}")
    assert before.status_code == 200
    assert all(value in before.content.decode() for value in PERSONAL + ["iphash-mary"])
    money_before = balances(affiliate_id=mary.pk)

    erased = api_client.post("/api/v1/privacy/erase", {"affiliate": mary.public_id})
    assert erased.status_code == 200 and erased.json()["erased"]["portal_sessions"] == 1

    after = api_client.get(f"/api/v1/privacy/export?affiliate={mary.public_id}")
    text = after.content.decode()
    assert not [value for value in PERSONAL + ["iphash-mary"] if value in text]
    data = after.json()["affiliate"]
    assert data["profile"]["name"] == "Erased"
    assert data["profile"]["email"] == f"erased-{mary.public_id}@erased.invalid"
    # Money rows stay: the same commissions, the same payout, the same balances.
    assert data["balances"] == money_before == {"pending": 1_000, "approved": 2_500, "paid": 7_000}
    assert [c["amount_cents"] for c in data["commissions"]] == [7_000, 2_500, 1_000]
    assert [(p["amount_cents"], p["status"]) for p in data["payouts"]] == [(7_000, "paid")]
    assert (
        sum(p["amount_cents"] for p in data["payouts"] if p["status"] == "paid") == data["balances"]["paid"]
    )


def test_the_erasure_is_audited_without_the_personal_data(api_client, mary):
    api_client.post("/api/v1/privacy/erase", {"affiliate": mary.public_id})
    entry = AuditLog.objects.get(action="privacy.erased")
    assert entry.object_id == mary.public_id and entry.actor_label
    assert not [value for value in PERSONAL if value in json.dumps(entry.data)]


def test_a_referred_customer_is_found_by_email_and_erased(api_client, program, affiliate):
    click = ClickFactory(
        affiliate=affiliate,
        visitor_id="vis-42",
        landing_url="https://acme.example/pricing?email=cust%40example.com",
        user_agent="Firefox",
        ip_hash="iphash-cust",
    )
    event = EventFactory(
        affiliate=affiliate,
        click=click,
        visitor_id="vis-42",
        customer_id="cus_42",
        customer_email_hash=email_hash("cust@example.com"),
        order_id="ORD-42",
    )
    CommissionFactory(affiliate=affiliate, event=event, amount_cents=2_000)
    ClickFactory(affiliate=affiliate, visitor_id="someone-else")

    found = api_client.get("/api/v1/privacy/export?email=Cust@example.com").json()["customer"]
    assert [e["customer_id"] for e in found["events"]] == ["cus_42"]
    assert [c["visitor_id"] for c in found["clicks"]] == ["vis-42"]

    assert api_client.post("/api/v1/privacy/erase", {"customer_id": "cus_42"}).status_code == 200

    assert api_client.get("/api/v1/privacy/export?email=cust@example.com").json()["customer"]["events"] == []
    click.refresh_from_db()
    event.refresh_from_db()
    assert (click.visitor_id, click.user_agent, click.ip_hash) == ("", "", "")
    assert click.landing_url == "https://acme.example/pricing"
    assert (event.customer_id, event.customer_email_hash, event.visitor_id) == ("", "", "")
    assert event.order_id == "ORD-42" and event.amount_cents == 10_000
    assert Commission.objects.get(event=event).amount_cents == 2_000
    assert Click.objects.filter(visitor_id="someone-else").exists()


@pytest.mark.parametrize(
    "query", ["", "?email=a@b.example&customer_id=c1", "?email=" + "x" * 300], ids=["none", "two", "long"]
)
def test_a_request_names_exactly_one_subject(api_client, query):
    assert api_client.get(f"/api/v1/privacy/export{query}").status_code == 400


def test_an_affiliate_of_another_program_or_mode_is_not_found(api_client, test_api_client, mary):
    other = AffiliateFactory(program__slug="other", code="OTHER")
    assert api_client.get(f"/api/v1/privacy/export?affiliate={other.public_id}").status_code == 404
    assert test_api_client.post("/api/v1/privacy/erase", {"affiliate": mary.public_id}).status_code == 404
    mary.refresh_from_db()
    assert mary.name == "Mary Major"


def test_a_customer_erasure_stays_in_its_program(api_client, affiliate):
    other = AffiliateFactory(program__slug="other", code="OTHER")
    elsewhere = EventFactory(affiliate=other, customer_id="cus_42")
    api_client.post("/api/v1/privacy/erase", {"customer_id": "cus_42"})
    assert Event.objects.get(pk=elsewhere.pk).customer_id == "cus_42"
