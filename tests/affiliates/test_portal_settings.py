import pytest

from affiliates.models import Affiliate
from refapp.models import AuditLog

pytestmark = pytest.mark.django_db


def test_payout_settings_page_without_stripe_configured(portal_client, settings):
    settings.STRIPE_SECRET_KEY = ""
    response = portal_client.get("/portal/settings/payout/")
    assert response.status_code == 200
    assert b"does not pay through Stripe" in response.content
    assert b"none yet" in response.content
    # The form offers the sign-in email as a starting point.
    assert b'value="john@partner.example"' in response.content


def test_paypal_email_sets_the_payout_method(portal_client, affiliate):
    response = portal_client.post("/portal/settings/payout/", {"paypal_email": " Pay@Partner.example "})
    assert response.status_code == 302 and response["Location"] == "/portal/settings/payout/"
    affiliate.refresh_from_db()
    assert (affiliate.payout_method, affiliate.paypal_email) == ("paypal", "pay@partner.example")
    log = AuditLog.objects.get(action="affiliate.payout_method_changed")
    assert log.actor_label == f"affiliate:{affiliate.public_id}"
    assert log.data["to"] == {"method": "paypal", "paypal_email": "pay@partner.example"}
    page = portal_client.get("/portal/settings/payout/")
    assert b"PayPal</strong> to pay@partner.example" in page.content
    assert b"Saved" in page.content


def test_saving_the_same_paypal_email_twice_logs_once(portal_client):
    portal_client.post("/portal/settings/payout/", {"paypal_email": "pay@partner.example"})
    portal_client.post("/portal/settings/payout/", {"paypal_email": "pay@partner.example"})
    assert AuditLog.objects.filter(action="affiliate.payout_method_changed").count() == 1


def test_invalid_paypal_email_changes_nothing(portal_client, affiliate):
    response = portal_client.post("/portal/settings/payout/", {"paypal_email": "not an email"})
    assert response.status_code == 200 and b"errorlist" in response.content
    affiliate.refresh_from_db()
    assert affiliate.payout_method == "" and affiliate.paypal_email == ""


def test_payout_settings_change_only_the_signed_in_affiliate(other_portal_client, affiliate):
    other_portal_client.post("/portal/settings/payout/", {"paypal_email": "mary@pay.example"})
    affiliate.refresh_from_db()
    assert affiliate.paypal_email == ""
    mary = Affiliate.objects.get(code="MARY")
    assert mary.paypal_email == "mary@pay.example"


def test_payout_settings_anonymous_redirects_to_login(client, db):
    response = client.post("/portal/settings/payout/", {"paypal_email": "x@example.com"})
    assert response.status_code == 302 and response["Location"].startswith("/portal/login/")


def test_profile_shows_email_read_only(portal_client):
    response = portal_client.get("/portal/profile/")
    assert response.status_code == 200
    assert b'value="john@partner.example" readonly' in response.content
    assert b'name="email"' not in response.content


def test_profile_update(portal_client, affiliate):
    response = portal_client.post(
        "/portal/profile/",
        {
            "name": "John Smith",
            "website": "https://john.example",
            "promotion": "Newsletter",
            "email": "x@evil.example",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/portal/profile/"
    affiliate.refresh_from_db()
    assert (affiliate.name, affiliate.website, affiliate.promotion) == (
        "John Smith",
        "https://john.example",
        "Newsletter",
    )
    assert affiliate.email == "john@partner.example"  # not a form field: ignored
    assert AuditLog.objects.get(action="affiliate.profile_changed").data == {
        "fields": ["name", "promotion", "website"]
    }


def test_profile_needs_a_name(portal_client, affiliate):
    response = portal_client.post("/portal/profile/", {"name": "  ", "website": "", "promotion": ""})
    assert response.status_code == 200 and b"errorlist" in response.content
    affiliate.refresh_from_db()
    assert affiliate.name == "John"


def test_profile_is_the_signed_in_affiliates_own(other_portal_client, affiliate):
    page = other_portal_client.get("/portal/profile/")
    assert b"mary@partner.example" in page.content and b"john@partner.example" not in page.content
    other_portal_client.post("/portal/profile/", {"name": "Mary Q", "website": "", "promotion": ""})
    affiliate.refresh_from_db()
    assert affiliate.name == "John"


def test_profile_anonymous_redirects_to_login(client, db):
    assert client.get("/portal/profile/")["Location"].startswith("/portal/login/")
