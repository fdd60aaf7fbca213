"""Tax details: entered by the affiliate, tax ids checked by python-stdnum, W-9/W-8 files kept
privately and downloadable by program admins only, and the yearly report of paid payouts."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from affiliates.models import ProgramStaff, TaxForm, TaxProfile
from affiliates.portal_services import TAX_FORM_MAX_BYTES, TaxDetails, UploadedForm, affiliate_tax_details_set
from payouts.exports import TAX_HEADER
from refapp.models import AuditLog
from tests.factories import AffiliateFactory, PayoutFactory

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n% a signed W-9\n%%EOF\n"


def _post(client, **fields):
    data = {"legal_name": "John Doe", "country": "DE", "tax_id": "DE136695976", **fields}
    return client.post("/portal/settings/tax/", data)


def test_an_invalid_vat_id_is_refused_with_a_clear_message(portal_client, affiliate):
    response = _post(portal_client, is_business="on", tax_id="DE136695978")
    assert response.status_code == 200
    assert (
        "This is not a valid VAT id or tax number for DE; check the digits and the country."
        in response.content.decode()
    )
    assert not TaxProfile.objects.exists()


def test_an_invalid_us_tax_id_is_refused(portal_client, affiliate):
    response = _post(
        portal_client,
        country="US",
        tax_id="12-34",
        form_type="w9",
        form_file=SimpleUploadedFile("w9.pdf", PDF, "application/pdf"),
    )
    assert "This is not a valid VAT id or tax number for US" in response.content.decode()
    assert not TaxProfile.objects.exists() and not TaxForm.objects.exists()


def test_a_vat_id_without_its_prefix_is_stored_compact_and_shown_masked(
    portal_client, affiliate, staff_client
):
    response = _post(portal_client, is_business="on", tax_id="136 695 976")
    assert response.status_code == 302
    profile = TaxProfile.objects.get(affiliate=affiliate)
    assert (profile.legal_name, profile.country, profile.is_business) == ("John Doe", "DE", True)
    assert (profile.tax_id, profile.tax_id_kind) == ("DE136695976", "eu.vat")
    row = AuditLog.objects.get(action="affiliate.tax_details_changed")
    assert row.actor_label == f"affiliate:{affiliate.public_id}" and "DE136695976" not in str(row.data)
    page = portal_client.get("/portal/settings/tax/").content.decode()
    assert "•••• 5976" in page and "DE136695976" not in page
    panel = staff_client.get(f"/panel/p/acme/affiliates/{affiliate.public_id}/").content.decode()
    assert "tax id •••• 5976" in panel and "DE136695976" not in panel


def test_a_national_number_of_a_country_without_eu_vat(portal_client, affiliate):
    assert _post(portal_client, country="US", tax_id="536-90-4399", form_type="w9").status_code == 200
    response = _post(
        portal_client,
        country="US",
        tax_id="536-90-4399",
        form_type="w9",
        form_file=SimpleUploadedFile("w9.pdf", PDF, "application/pdf"),
    )
    assert response.status_code == 302
    profile = TaxProfile.objects.get(affiliate=affiliate)
    assert (profile.tax_id, profile.tax_id_kind, profile.form_type) == ("536904399", "us.tin", "w9")


def test_a_us_person_must_upload_a_w9(portal_client, affiliate):
    page = _post(portal_client, country="US", tax_id="04-2103594", form_type="w9").content.decode()
    assert "Upload your signed W-9." in page
    page = _post(portal_client, country="US", tax_id="04-2103594", form_type="w8ben").content.decode()
    assert "A US person gives a W-9." in page
    assert not TaxProfile.objects.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"MZ\x90\x00 not a form", "Upload the form as a PDF, PNG or JPEG file."),
        (b"<html><script>alert(1)</script>", "Upload the form as a PDF, PNG or JPEG file."),
        (b"%PDF-" + b"x" * TAX_FORM_MAX_BYTES, "The file is too large: at most 5 MB."),
    ],
)
def test_a_form_file_must_be_a_small_pdf_or_image_by_its_bytes(portal_client, affiliate, content, message):
    # The name and the browser's content type say PDF; the bytes decide.
    upload = SimpleUploadedFile("w9.pdf", content, "application/pdf")
    response = _post(portal_client, country="US", tax_id="04-2103594", form_type="w9", form_file=upload)
    assert response.status_code == 200 and message in response.content.decode()
    assert not TaxForm.objects.exists() and not TaxProfile.objects.exists()


@pytest.fixture
def w9(affiliate):
    affiliate_tax_details_set(
        affiliate=affiliate,
        details=TaxDetails(
            legal_name="John Doe", country="US", is_business=False, tax_id="536-90-4399", form_type="w9"
        ),
        upload=UploadedForm(filename="../../etc/w9 scan.pdf", content=PDF),
        now=timezone.now(),
    )
    return TaxForm.objects.get(affiliate=affiliate)


def test_the_form_is_kept_in_the_database_not_under_a_public_url(w9):
    assert bytes(w9.content) == PDF and w9.content_type == "application/pdf" and w9.size == len(PDF)
    assert w9.filename == "w9 scan.pdf"  # no path from the uploader survives


def test_an_admin_downloads_the_form_as_an_attachment(staff_client, affiliate, w9):
    response = staff_client.get(f"/panel/p/acme/affiliates/{affiliate.public_id}/tax-form/")
    assert response.status_code == 200 and response.content == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="JOHN-tax-form.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff" and response["Cache-Control"] == "no-store"
    detail = staff_client.get(f"/panel/p/acme/affiliates/{affiliate.public_id}/").content.decode()
    assert "tax-form/" in detail


def test_only_admins_of_the_program_download_the_form(
    program, affiliate, w9, client, other_staff_client, portal_client, django_user_model
):
    url = f"/panel/p/acme/affiliates/{affiliate.public_id}/tax-form/"
    manager = django_user_model.objects.create_user("manager", "m@acme.example", "pw", is_staff=True)
    ProgramStaff.objects.create(program=program, user=manager, role=ProgramStaff.Role.MANAGER)
    manager_client = Client()
    manager_client.force_login(manager)
    assert manager_client.get(url).status_code == 404
    assert (
        "tax-form/"
        not in manager_client.get(f"/panel/p/acme/affiliates/{affiliate.public_id}/").content.decode()
    )
    assert other_staff_client.get(url).status_code == 404
    assert client.get(url).status_code == 302  # to the staff login
    assert portal_client.get(url).status_code == 302  # an affiliate is not staff
    assert PDF not in portal_client.get("/portal/settings/tax/").content


def test_no_form_on_file_is_404(staff_client, affiliate):
    assert staff_client.get(f"/panel/p/acme/affiliates/{affiliate.public_id}/tax-form/").status_code == 404


def test_tax_details_are_the_signed_in_affiliates_own(other_portal_client, affiliate):
    _post(other_portal_client, legal_name="Mary Major")
    assert TaxProfile.objects.get().affiliate.code == "MARY"
    assert not TaxProfile.objects.filter(affiliate=affiliate).exists()


def test_tax_details_anonymous_redirects_to_login(client, db):
    assert client.get("/portal/settings/tax/")["Location"].startswith("/portal/login/")


def _paid(affiliate, cents, when, period):
    return PayoutFactory(
        affiliate=affiliate, amount_cents=cents, status="paid", paid_at=when, created_at=when, period=period
    )


def test_the_yearly_tax_csv_has_one_row_per_affiliate_with_totals_and_tax_details(
    staff_client, program, affiliate, w9
):
    mary = AffiliateFactory(program=program, code="MARY", name="Mary", email="mary@partner.example")
    affiliate_tax_details_set(
        affiliate=mary,
        details=TaxDetails(legal_name="Mary SARL", country="FR", is_business=True, tax_id="FR40303265045"),
        upload=None,
        now=timezone.now(),
    )
    nobody = AffiliateFactory(program=program, code="NOTAX", name="No Tax")
    _paid(affiliate, 5_000, datetime(2026, 1, 1, 6, tzinfo=UTC), "2026-01")
    _paid(affiliate, 7_550, datetime(2026, 6, 1, 6, tzinfo=UTC), "2026-06")
    _paid(mary, 12_000, datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "2026-12")
    _paid(nobody, 9_900, datetime(2026, 3, 1, 6, tzinfo=UTC), "2026-03")
    _paid(mary, 99_999, datetime(2025, 12, 31, 23, 59, tzinfo=UTC), "2025-12")  # another year
    PayoutFactory(affiliate=mary, amount_cents=1_111, status="pending", period="2026-11")  # not paid

    response = staff_client.get("/panel/p/acme/payouts/tax-report.csv?year=2026")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="acme-tax-report-2026.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert tuple(rows[0]) == TAX_HEADER
    by_code = {row[1]: dict(zip(TAX_HEADER, row, strict=True)) for row in rows[1:]}
    assert len(rows) == 4 and set(by_code) == {"JOHN", "MARY", "NOTAX"}
    john = by_code["JOHN"]
    assert (john["legal_name"], john["country"], john["business"], john["tax_id"], john["tax_id_type"]) == (
        "John Doe",
        "US",
        "false",
        "536904399",
        "us.tin",
    )
    assert (
        john["form_type"],
        john["form_on_file"],
        john["currency"],
        john["paid_total"],
        john["payouts"],
    ) == (
        "W-9 (US person)",
        "true",
        "USD",
        "125.50",
        "2",
    )
    assert (by_code["MARY"]["tax_id"], by_code["MARY"]["business"], by_code["MARY"]["paid_total"]) == (
        "FR40303265045",
        "true",
        "120.00",
    )
    assert (by_code["NOTAX"]["legal_name"], by_code["NOTAX"]["tax_id"], by_code["NOTAX"]["paid_total"]) == (
        "",
        "",
        "99.00",
    )


def test_the_tax_report_is_for_program_admins(program, client, django_user_model, other_staff_client):
    manager = django_user_model.objects.create_user("manager", "m@acme.example", "pw", is_staff=True)
    ProgramStaff.objects.create(program=program, user=manager, role=ProgramStaff.Role.MANAGER)
    client.force_login(manager)
    assert client.get("/panel/p/acme/payouts/tax-report.csv").status_code == 404
    assert other_staff_client.get("/panel/p/acme/payouts/tax-report.csv").status_code == 404


def test_a_bad_year_is_a_clear_error_not_a_500(staff_client, program):
    response = staff_client.get("/panel/p/acme/payouts/tax-report.csv?year=１９９９")
    assert response.status_code == 302
    page = staff_client.get(response["Location"]).content.decode()
    assert "Choose a year between 2000 and 2100 for the tax report." in page
