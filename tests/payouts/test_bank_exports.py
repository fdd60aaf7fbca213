"""Manual runs paid by bank: a SEPA credit transfer file (pain.001) for EUR programs, and Wise's
batch payment CSV; the full account numbers appear in these files and nowhere else."""

import csv
import io
import xml.etree.ElementTree as ET

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone
from sepaxml.validation import try_valid_xml

from affiliates.models import ProgramStaff
from affiliates.portal_services import (
    BankDetails,
    TaxDetails,
    affiliate_payout_bank_set,
    affiliate_payout_wise_set,
    affiliate_tax_details_set,
)
from payouts.exports import WISE_HEADER
from payouts.models import Payout
from payouts.services import payouts_create
from tests.factories import AffiliateFactory

pytestmark = pytest.mark.django_db

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}

ACCOUNTS = [
    ("Anna Schmidt", "DE89 3704 0044 0532 0130 00", ""),
    ("Bruno Martin", "FR1420041010050500013M02606", "PSSTFRPP"),
    ("Carla Janssen", "NL91ABNA0417164300", ""),
]


@pytest.fixture
def eur_program(program):
    program.currency = "EUR"
    program.sepa_debtor_name = "Acme GmbH"
    program.sepa_debtor_iban = "DE02120300000000202051"
    program.sepa_debtor_bic = "BYLADEM1001"
    program.save()
    return program


def bank_affiliate(program, code, holder, iban, bic=""):
    affiliate = AffiliateFactory(program=program, code=code, name=holder)
    return affiliate_payout_bank_set(
        affiliate=affiliate, details=BankDetails(holder=holder, iban=iban, bic=bic)
    )


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_sepa_file_of_three_eur_payouts_validates_against_pain_001(staff_client, eur_program, approved):
    affiliates = []
    for n, (holder, iban, bic) in enumerate(ACCOUNTS):
        affiliate = bank_affiliate(eur_program, f"BANK{n}", holder, iban, bic)
        approved(affiliate, 5_000 + n * 1_234)
        affiliates.append(affiliate)
    payouts = payouts_create(program=eur_program, now=timezone.now())
    assert len(payouts) == 3 and {p.method for p in payouts} == {"bank"}

    response = staff_client.get("/panel/p/acme/payouts/sepa.xml?status=pending")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    assert response["Content-Disposition"].startswith('attachment; filename="acme-sepa-payouts-')
    content = response.content
    try_valid_xml(content, "pain.001.001.03")  # sepaxml's own schema validation, again, on what was served

    root = ET.fromstring(content)
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header.find("p:NbOfTxs", NS).text == "3"
    assert header.find("p:CtrlSum", NS).text == "187.02"  # 50.00 + 62.34 + 74.68
    info = root.find("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    assert info.find("p:DbtrAcct/p:Id/p:IBAN", NS).text == "DE02120300000000202051"
    assert info.find("p:Dbtr/p:Nm", NS).text == "Acme GmbH"
    sent = {
        tx.find("p:CdtrAcct/p:Id/p:IBAN", NS).text: (
            tx.find("p:Amt/p:InstdAmt", NS).text,
            tx.find("p:Cdtr/p:Nm", NS).text,
            tx.find("p:PmtId/p:EndToEndId", NS).text,
            tx.find("p:CdtrAgt/p:FinInstnId/p:BIC", NS).text,
        )
        for tx in info.findall("p:CdtTrfTxInf", NS)
    }
    by_affiliate = {p.affiliate_id: p for p in payouts}
    assert sent == {
        "DE89370400440532013000": (
            "50.00",
            "Anna Schmidt",
            by_affiliate[affiliates[0].pk].public_id.replace("_", "-"),
            "COBADEFFXXX",  # from the IBAN's bank registry, as the affiliate left it empty
        ),
        "FR1420041010050500013M02606": (
            "62.34",
            "Bruno Martin",
            by_affiliate[affiliates[1].pk].public_id.replace("_", "-"),
            "PSSTFRPP",
        ),
        "NL91ABNA0417164300": (
            "74.68",
            "Carla Janssen",
            by_affiliate[affiliates[2].pk].public_id.replace("_", "-"),
            "ABNANL2A",
        ),
    }
    # Marking the run paid stays as it was: by hand, per payout, with the bank's reference.
    payout = payouts[0]
    staff_client.post(f"/panel/p/acme/payouts/{payout.public_id}/mark-paid/", {"reference": "SEPA-2026-12"})
    payout.refresh_from_db()
    assert payout.status == "paid" and payout.reference == "SEPA-2026-12"


def test_the_sepa_file_keeps_the_account_of_the_run(staff_client, eur_program, approved):
    """Details changed after the run do not redirect money already decided on."""
    affiliate = bank_affiliate(eur_program, "BANK", "Anna Schmidt", "DE89370400440532013000")
    approved(affiliate, 6_000)
    payouts_create(program=eur_program, now=timezone.now())
    affiliate_payout_bank_set(
        affiliate=affiliate, details=BankDetails(holder="Mallory", iban="NL91ABNA0417164300")
    )
    content = staff_client.get("/panel/p/acme/payouts/sepa.xml").content
    assert b"DE89370400440532013000" in content and b"NL91ABNA0417164300" not in content


def test_a_non_eur_program_cannot_export_sepa(staff_client, program, approved):
    assert program.currency == "USD"
    affiliate = bank_affiliate(program, "BANK", "Anna Schmidt", "DE89370400440532013000")
    approved(affiliate, 6_000)
    payouts_create(program=program, now=timezone.now())
    response = staff_client.get("/panel/p/acme/payouts/sepa.xml")
    assert response.status_code == 302 and response["Location"] == "/panel/p/acme/payouts/"
    assert _messages(response) == [
        "No SEPA file: SEPA transfers are in euros; this program pays in USD. Use the Wise CSV instead."
    ]
    page = staff_client.get("/panel/p/acme/payouts/")
    assert b"sepa.xml" not in page.content  # no button for a file that cannot be made


def test_sepa_needs_the_programs_debtor_account(staff_client, program, approved):
    program.currency = "EUR"
    program.save()
    affiliate = bank_affiliate(program, "BANK", "Anna Schmidt", "DE89370400440532013000")
    approved(affiliate, 6_000)
    payouts_create(program=program, now=timezone.now())
    response = staff_client.get("/panel/p/acme/payouts/sepa.xml")
    assert response.status_code == 302
    assert _messages(response) == [
        "No SEPA file: Set the program's SEPA debtor (name, IBAN, BIC) in the settings first."
    ]


def test_sepa_with_nothing_to_pay_says_so(staff_client, eur_program):
    response = staff_client.get("/panel/p/acme/payouts/sepa.xml")
    assert _messages(response) == ["No SEPA file: No bank payouts to an IBAN are waiting to be paid."]


def test_the_sepa_debtor_is_a_validated_program_setting(staff_client, program):
    form = {
        "name": "Acme",
        "website": "https://acme.example",
        "cookie_days": 30,
        "attribution_model": "last_click",
        "hold_days": 30,
        "payout_day": 1,
        "minimum_payout": "50.00",
        "sepa_debtor_name": "Acme GmbH",
        "sepa_debtor_iban": "DE02 1203 0000 0000 2020 52",
        "sepa_debtor_bic": "",
    }
    response = staff_client.post("/panel/p/acme/settings/", form)
    assert response.status_code == 200 and b"not a valid IBAN" in response.content
    program.refresh_from_db()
    assert program.sepa_debtor_iban == ""
    form["sepa_debtor_iban"] = "DE02 1203 0000 0000 2020 51"
    response = staff_client.post("/panel/p/acme/settings/", form)
    assert response.status_code == 302
    program.refresh_from_db()
    assert (program.sepa_debtor_name, program.sepa_debtor_iban) == ("Acme GmbH", "DE02120300000000202051")


def _csv(response):
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_wise_csv_has_wises_batch_columns_and_no_payout_twice(staff_client, eur_program, approved):
    wise = affiliate_payout_wise_set(
        affiliate=AffiliateFactory(program=eur_program, code="WISE", name="=HYPERLINK(1)"),
        wise_email="wise@partner.example",
    )
    affiliate_tax_details_set(
        affiliate=wise,
        details=TaxDetails(legal_name="Wise Ltd", country="DE", is_business=True, tax_id="DE136695976"),
        upload=None,
        now=timezone.now(),
    )
    sepa = bank_affiliate(eur_program, "SEPA", "Anna Schmidt", "DE89370400440532013000")
    approved(wise, 7_050)
    approved(sepa, 6_000)
    [wise_payout, _] = sorted(
        payouts_create(program=eur_program, now=timezone.now()), key=lambda p: p.method != "wise"
    )
    response = staff_client.get("/panel/p/acme/payouts/wise.csv?status=pending")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    rows = _csv(response)
    assert tuple(rows[0]) == WISE_HEADER
    # The SEPA payout is in the SEPA file only: using both files never pays anyone twice.
    assert rows[1:] == [
        [
            "'=HYPERLINK(1)",  # the CSV-injection guard of every export
            "wise@partner.example",
            f"{wise_payout.public_id.replace('_', '-')} {wise_payout.period}",
            "INSTITUTION",
            "target",
            "70.50",
            "EUR",
            "EUR",
            "",
            "",
            "",
            "",
            "",
        ]
    ]


def test_us_bank_payouts_go_in_the_wise_csv_with_their_full_numbers(staff_client, program, approved):
    ach = AffiliateFactory(program=program, code="ACH", name="Dan Smith")
    affiliate_payout_bank_set(
        affiliate=ach,
        details=BankDetails(
            holder="Dan Smith",
            account_number="000123456789",
            routing_number="111000025",
            account_type="checking",
        ),
    )
    iban = bank_affiliate(program, "IBAN", "Anna Schmidt", "DE89370400440532013000")
    approved(ach, 8_000)
    approved(iban, 9_000)
    payouts_create(program=program, now=timezone.now())
    rows = _csv(staff_client.get("/panel/p/acme/payouts/wise.csv"))
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["Dan Smith"][5:] == [
        "80.00",
        "USD",
        "USD",
        "",
        "",
        "000123456789",
        "111000025",
        "CHECKING",
    ]
    # An IBAN in a USD program cannot go by SEPA: Wise converts it.
    assert by_name["Anna Schmidt"][5:] == [
        "90.00",
        "USD",
        "USD",
        "DE89370400440532013000",
        "COBADEFFXXX",
        "",
        "",
        "",
    ]
    assert by_name["Dan Smith"][3] == "PERSON"
    # The panel shows the payout's account masked, never the number.
    payout = Payout.objects.get(affiliate=ach)
    assert payout.destination == "ACH account •••• 6789, routing 111000025"
    detail = staff_client.get(f"/panel/p/acme/payouts/{payout.public_id}/").content.decode()
    assert "000123456789" not in detail and "•••• 6789" in detail


def test_bank_exports_are_for_staff_who_pay(program, approved, client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", "v@acme.example", "pw", is_staff=True)
    ProgramStaff.objects.create(program=program, user=viewer, role=ProgramStaff.Role.VIEWER)
    client.force_login(viewer)
    assert client.get("/panel/p/acme/payouts/wise.csv").status_code == 404
    assert client.get("/panel/p/acme/payouts/sepa.xml").status_code == 404


def test_other_programs_staff_and_anonymous_get_no_export(other_staff_client, client, program):
    assert other_staff_client.get("/panel/p/acme/payouts/wise.csv").status_code == 404
    assert other_staff_client.get("/panel/p/acme/payouts/sepa.xml").status_code == 404
    assert client.get("/panel/p/acme/payouts/wise.csv").status_code == 302
    assert client.get("/panel/p/acme/payouts/sepa.xml").status_code == 302


def test_erasing_an_affiliate_erases_their_bank_and_tax_details(program, approved):
    from affiliates.models import Affiliate, TaxForm, TaxProfile
    from affiliates.portal_services import UploadedForm
    from payouts.privacy import Subject, privacy_erase, privacy_export

    affiliate = bank_affiliate(program, "BANK", "Anna Schmidt", "DE89370400440532013000")
    affiliate_tax_details_set(
        affiliate=affiliate,
        details=TaxDetails(
            legal_name="Anna Schmidt", country="US", is_business=False, tax_id="536-90-4399", form_type="w9"
        ),
        upload=UploadedForm(filename="w9.pdf", content=b"%PDF-1.7 w9"),
        now=timezone.now(),
    )
    approved(affiliate, 6_000)
    [payout] = payouts_create(program=program, now=timezone.now())
    subject = Subject(program=program, livemode=True, affiliate=affiliate)
    exported = str(privacy_export(subject))
    assert "IBAN DE•• •••• 3000" in exported and "DE89370400440532013000" not in exported
    assert "536904399" not in exported and "•••• 4399" in exported
    counts = privacy_erase(subject=subject, actor=None)
    assert (counts["tax_details"], counts["tax_forms"]) == (1, 1)
    affiliate = Affiliate.objects.get(pk=affiliate.pk)
    assert (
        affiliate.bank_iban,
        affiliate.bank_bic,
        affiliate.bank_account_holder,
        affiliate.bank_display,
    ) == ("",) * 4
    assert not TaxProfile.objects.exists() and not TaxForm.objects.exists()
    payout.refresh_from_db()
    assert payout.bank_details == {} and payout.destination == "erased" and payout.amount_cents == 6_000
