"""Bank and Wise payout details in the portal: validated where entered, masked after entry
everywhere, and every change audited and emailed to the affiliate."""

import pytest
from django.core import mail

from affiliates.models import Affiliate
from refapp.models import AuditLog

pytestmark = pytest.mark.django_db

IBAN = "DE89370400440532013000"


def _sepa(holder="John Doe", iban=IBAN, bic=""):
    return {"method": "sepa", "holder": holder, "iban": iban, "bic": bic}


def test_an_invalid_iban_is_refused_with_a_clear_message(portal_client, affiliate):
    response = portal_client.post("/portal/settings/payout/", _sepa(iban="DE89 3704 0044 0532 0130 01"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "This is not a valid IBAN (invalid checksum digits). Check it against your bank statement." in page
    affiliate.refresh_from_db()
    assert (affiliate.payout_method, affiliate.bank_iban) == ("", "")
    assert not AuditLog.objects.filter(action="affiliate.payout_method_changed").exists()


def test_an_iban_outside_the_sepa_zone_is_refused(portal_client, affiliate):
    response = portal_client.post("/portal/settings/payout/", _sepa(iban="BR1800360305000010009795493C1"))
    assert "cannot be paid by SEPA transfer" in response.content.decode()
    affiliate.refresh_from_db()
    assert affiliate.bank_iban == ""


def test_a_bic_of_another_country_is_refused(portal_client, affiliate):
    response = portal_client.post("/portal/settings/payout/", _sepa(bic="ABNANL2A"))
    assert "This BIC is of a bank in NL, but the IBAN is of DE." in response.content.decode()


def test_bank_details_are_masked_everywhere_after_entry(
    portal_client, affiliate, staff_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = portal_client.post("/portal/settings/payout/", _sepa(iban="de89 3704 0044 0532 0130 00"))
    assert response.status_code == 302
    affiliate.refresh_from_db()
    assert (affiliate.payout_method, affiliate.bank_iban, affiliate.bank_bic) == ("bank", IBAN, "COBADEFFXXX")
    masked = "IBAN DE•• •••• 3000"
    portal = portal_client.get("/portal/settings/payout/").content.decode()
    assert masked in portal and IBAN not in portal and "0532 0130" not in portal
    assert 'name="iban"' in portal and f'value="{IBAN}"' not in portal  # the form is not refilled
    payouts_page = portal_client.get("/portal/payouts/").content.decode()
    assert masked in payouts_page and IBAN not in payouts_page
    panel = staff_client.get(f"/panel/p/acme/affiliates/{affiliate.public_id}/").content.decode()
    assert masked in panel and IBAN not in panel
    # Nor in the audit log or the email.
    row = AuditLog.objects.get(action="affiliate.payout_method_changed")
    assert IBAN not in str(row.data) and row.data["to"]["account"] == masked
    [email] = mail.outbox
    assert IBAN not in email.body and masked in email.body


def test_changing_bank_details_writes_an_audit_row_and_emails_the_affiliate(
    portal_client, affiliate, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        portal_client.post("/portal/settings/payout/", {"paypal_email": "pay@partner.example"})
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = portal_client.post("/portal/settings/payout/", _sepa())
    assert response.status_code == 302
    row = AuditLog.objects.filter(action="affiliate.payout_method_changed").latest("pk")
    assert row.actor_label == f"affiliate:{affiliate.public_id}"
    assert row.data == {
        "from": {"method": "paypal", "paypal_email": "pay@partner.example"},
        "to": {"method": "bank", "account": "IBAN DE•• •••• 3000", "holder": "John Doe"},
    }
    [email] = mail.outbox
    assert email.to == ["john@partner.example"]
    assert email.subject == "Your Acme payout details were changed"
    assert "Bank transfer to IBAN DE•• •••• 3000" in email.body
    assert "/portal/settings/payout/" in email.body

    # The same details again: no change, no row, no email.
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        portal_client.post("/portal/settings/payout/", _sepa())
    assert AuditLog.objects.filter(action="affiliate.payout_method_changed").count() == 2
    assert mail.outbox == []


def test_a_us_account_needs_a_valid_aba_routing_number(portal_client, affiliate):
    form = {
        "method": "ach",
        "holder": "John Doe",
        "routing_number": "111000026",
        "account_number": "000123456789",
        "account_type": "checking",
    }
    response = portal_client.post("/portal/settings/payout/", form)
    assert (
        "This is not a valid US routing number (9 digits with a valid ABA checksum)."
        in response.content.decode()
    )
    affiliate.refresh_from_db()
    assert affiliate.payout_method == ""
    form["routing_number"] = "111000025"
    assert portal_client.post("/portal/settings/payout/", form).status_code == 302
    affiliate.refresh_from_db()
    assert (affiliate.bank_routing_number, affiliate.bank_account_number, affiliate.bank_account_type) == (
        "111000025",
        "000123456789",
        "checking",
    )
    page = portal_client.get("/portal/settings/payout/").content.decode()
    assert "ACH account •••• 6789, routing 111000025" in page and "000123456789" not in page


def test_switching_from_iban_to_us_account_forgets_the_iban(portal_client, affiliate):
    portal_client.post("/portal/settings/payout/", _sepa())
    portal_client.post(
        "/portal/settings/payout/",
        {
            "method": "ach",
            "holder": "John Doe",
            "routing_number": "021000021",
            "account_number": "987654321",
            "account_type": "savings",
        },
    )
    affiliate.refresh_from_db()
    assert (
        affiliate.bank_iban == ""
        and affiliate.bank_bic == ""
        and affiliate.bank_account_number == "987654321"
    )


def test_a_wise_email_is_saved_audited_and_emailed(
    portal_client, affiliate, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = portal_client.post(
            "/portal/settings/payout/", {"method": "wise", "wise_email": "J@Wise.example"}
        )
    assert response.status_code == 302
    affiliate.refresh_from_db()
    assert (affiliate.payout_method, affiliate.wise_email) == ("wise", "j@wise.example")
    assert AuditLog.objects.get(action="affiliate.payout_method_changed").data["to"] == {
        "method": "wise",
        "wise_email": "j@wise.example",
    }
    [email] = mail.outbox
    assert email.to == ["john@partner.example"] and "Wise to j@wise.example" in email.body


def test_a_wise_email_a_spreadsheet_would_run_is_refused(portal_client, affiliate):
    response = portal_client.post(
        "/portal/settings/payout/", {"method": "wise", "wise_email": "=1+1@csv.example"}
    )
    assert response.status_code == 200 and b"may not start with" in response.content
    affiliate.refresh_from_db()
    assert affiliate.wise_email == ""


def test_bank_details_change_only_the_signed_in_affiliate(other_portal_client, affiliate):
    other_portal_client.post("/portal/settings/payout/", _sepa(holder="Mary"))
    affiliate.refresh_from_db()
    assert affiliate.bank_iban == ""
    assert Affiliate.objects.get(code="MARY").bank_iban == IBAN


def test_bank_details_anonymous_redirects_to_login(client, db):
    response = client.post("/portal/settings/payout/", _sepa())
    assert response.status_code == 302 and response["Location"].startswith("/portal/login/")
