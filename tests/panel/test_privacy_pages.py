"""The panel's privacy pages: program admins see and erase; other staff, viewers and anonymous
users get nothing and change nothing."""

import pytest

from affiliates.models import ProgramStaff
from refapp.hashing import email_hash
from refapp.models import AuditLog
from tests.factories import CommissionFactory, EventFactory
from tests.helpers import staff_client_with_role
from tracking.models import Event

pytestmark = pytest.mark.django_db


def affiliate_url(affiliate):
    return f"/panel/p/acme/affiliates/{affiliate.public_id}/privacy/"


CUSTOMER_URL = "/panel/p/acme/privacy/?email=cust@example.com"


@pytest.fixture
def customer_event(affiliate):
    return EventFactory(
        affiliate=affiliate, customer_id="cus_7", customer_email_hash=email_hash("cust@example.com")
    )


@pytest.fixture
def manager_client(program):
    return staff_client_with_role(program, ProgramStaff.Role.MANAGER, username="manager")


def test_an_admin_sees_the_affiliate_export_and_downloads_it(staff_client, affiliate):
    page = staff_client.get(affiliate_url(affiliate))
    assert page.status_code == 200 and "john@partner.example" in page.content.decode()
    download = staff_client.get(affiliate_url(affiliate) + "?format=json")
    assert download["Content-Disposition"].startswith("attachment")
    assert download.json()["affiliate"]["profile"]["email"] == "john@partner.example"


def test_an_admin_erases_an_affiliate_after_confirming(staff_client, affiliate):
    CommissionFactory(affiliate=affiliate, amount_cents=1234)
    refused = staff_client.post(affiliate_url(affiliate), {"confirm": "yes"})
    assert refused.status_code == 200
    affiliate.refresh_from_db()
    assert affiliate.name == "John"
    done = staff_client.post(affiliate_url(affiliate), {"confirm": "ERASE"})
    assert done.status_code == 302
    affiliate.refresh_from_db()
    assert affiliate.name == "Erased" and affiliate.email.endswith("@erased.invalid")
    assert affiliate.commissions.get().amount_cents == 1234
    assert AuditLog.objects.filter(action="privacy.erased", object_id=affiliate.public_id).exists()


def test_an_admin_looks_up_and_erases_a_customer(staff_client, customer_event):
    assert staff_client.get("/panel/p/acme/privacy/").status_code == 200
    page = staff_client.get(CUSTOMER_URL)
    assert page.status_code == 200 and "cus_7" in page.content.decode()
    assert staff_client.post(CUSTOMER_URL, {"confirm": "ERASE"}).status_code == 302
    event = Event.objects.get(pk=customer_event.pk)
    assert (event.customer_id, event.customer_email_hash) == ("", "")
    assert event.amount_cents == 10_000


def test_a_lookup_needs_exactly_one_key(staff_client):
    page = staff_client.get("/panel/p/acme/privacy/?email=a@b.example&customer_id=c")
    assert "Give either an email or a customer id." in page.content.decode()


@pytest.mark.parametrize("who", ["other", "manager", "anonymous"])
def test_others_see_nothing_and_erase_nothing(
    who, other_staff_client, manager_client, client, affiliate, customer_event
):
    visitor = {"other": other_staff_client, "manager": manager_client, "anonymous": client}[who]
    for url in (affiliate_url(affiliate), CUSTOMER_URL):
        seen = visitor.get(url)
        posted = visitor.post(url, {"confirm": "ERASE"})
        if who == "anonymous":
            assert seen.status_code == posted.status_code == 302
            assert seen["Location"].startswith("/panel/login/")
        else:
            assert seen.status_code == posted.status_code == 404
    affiliate.refresh_from_db()
    assert affiliate.name == "John"
    assert Event.objects.get(pk=customer_event.pk).customer_id == "cus_7"
    assert not AuditLog.objects.filter(action="privacy.erased").exists()
