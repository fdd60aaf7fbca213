"""The panel's import page: upload → preview (nothing written) → confirm (lands)."""

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from affiliates.models import Affiliate, ProgramStaff
from commissions.models import ImportUpload
from refapp.models import AuditLog
from tests.helpers import staff_client_with_role
from tracking.models import Referral

pytestmark = pytest.mark.django_db

START = "/panel/p/acme/affiliates/import/"
HEADER = "stripe_customer_id,first_name,last_name,email,paypal_email,wise_email,token\n"
GOOD = (
    HEADER
    + "cus_1,Ann,Lee,ann@aff.example,,,ann\ncus_2,Ann,Lee,ann@aff.example,,,ann\n,Bo,Ng,bo@aff.example,,,bo\n"
)
WITH_BAD_LINE_3 = (
    HEADER + "cus_1,Ann,Lee,ann@aff.example,,,ann\ncus_2,Bo,Ng,nope,,,bo\n,Cy,Ma,cy@aff.example,,,cy\n"
)


def upload(client, content: str | bytes, *, fmt="rewardful", name="affiliates.csv", **extra):
    data = content.encode() if isinstance(content, str) else content
    body = {"format": fmt, "file": SimpleUploadedFile(name, data, content_type="text/csv"), **extra}
    return client.post(START, body)


def preview_url(response) -> str:
    assert response.status_code == 302, response.content[:500]
    assert re.match(r"^/panel/p/acme/affiliates/import/[A-Za-z0-9_-]{20,}/$", response["Location"])
    return response["Location"]


def test_upload_preview_then_confirm_lands_the_file(staff_client, program):
    preview = preview_url(upload(staff_client, GOOD, ref_param="via"))

    page = staff_client.get(preview)
    html = page.content.decode()
    assert page.status_code == 200
    # Counts, and nothing written by the upload or the preview.
    assert re.search(r"<td>3</td><td>3</td><td>0</td><td>0</td><td>0</td>", html), html
    assert "<code>?via=</code>" in html
    assert Affiliate.objects.count() == 0 and Referral.objects.count() == 0
    assert not AuditLog.objects.filter(action="affiliates.imported").exists()

    done = staff_client.post(preview + "confirm/")

    assert done.status_code == 302 and done["Location"] == "/panel/p/acme/affiliates/"
    assert set(Affiliate.objects.values_list("email", "code")) == {
        ("ann@aff.example", "ann"),
        ("bo@aff.example", "bo"),
    }
    assert set(Referral.objects.values_list("customer_id", flat=True)) == {"cus_1", "cus_2"}
    program.refresh_from_db()
    assert "via" in program.ref_params
    audit = AuditLog.objects.get(action="affiliates.imported")
    assert audit.actor_label.startswith("user:") and audit.data["filename"] == "affiliates.csv"
    listing = staff_client.get(done["Location"])
    assert "Imported affiliates.csv: 3 new" in listing.content.decode()
    # The stored upload is gone: its link cannot import twice.
    assert ImportUpload.objects.count() == 0
    assert staff_client.post(preview + "confirm/").status_code == 404


def test_preview_lists_refused_rows_with_line_numbers_and_confirm_writes_nothing(staff_client, program):
    preview = preview_url(upload(staff_client, WITH_BAD_LINE_3))

    html = staff_client.get(preview).content.decode()

    assert re.search(
        r"<tr><td>3</td><td>email &#x27;nope&#x27; is not a valid email address</td></tr>", html
    ), html
    assert "nothing is imported" in html and "confirm/" not in html
    response = staff_client.post(preview + "confirm/")
    assert response.status_code == 302 and response["Location"] == preview
    assert Affiliate.objects.count() == 0 and ImportUpload.objects.count() == 1


def test_skip_invalid_upload_lands_the_valid_rows(staff_client, program):
    preview = preview_url(upload(staff_client, WITH_BAD_LINE_3, skip_invalid="on"))
    assert "leaving out 1" in staff_client.get(preview).content.decode()
    staff_client.post(preview + "confirm/")
    assert set(Affiliate.objects.values_list("email", flat=True)) == {"ann@aff.example", "cy@aff.example"}


@pytest.mark.parametrize(
    ("content", "fmt", "message"),
    [
        (b"\xff\xfe\x00e\x00m", "rewardful", "not UTF-8"),
        ("name,ref\nA,b\n", "rewardful", "missing columns email, first_name, last_name"),
        (HEADER, "rewardful", "no rows"),
        ("email,first_name,last_name\nx@y.example,a,b\n", "firstpromoter", None),  # valid: ignored columns
        (HEADER + "cus_1,A,B,a@aff.example,,,a\n", "refapp", "unknown columns"),
        ("", "rewardful", "empty"),
    ],
)
def test_bad_uploads_answer_form_errors_and_store_nothing(staff_client, program, content, fmt, message):
    response = upload(staff_client, content, fmt=fmt)
    if message is None:
        assert response.status_code == 302
        return
    assert response.status_code == 400
    assert message in response.content.decode()
    assert ImportUpload.objects.count() == 0


def test_a_file_over_the_size_limit_and_a_bad_parameter_are_form_errors(staff_client, program, settings):
    settings.REFAPP_IMPORT_MAX_BYTES = 100
    response = upload(staff_client, GOOD, ref_param="bad param!")
    html = response.content.decode()
    assert response.status_code == 400 and "larger than" in html and "letters, digits" in html
    assert upload(staff_client, GOOD, fmt="csv").status_code == 400
    assert staff_client.post(START, {"format": "rewardful"}).status_code == 400
    assert ImportUpload.objects.count() == 0


def test_an_unknown_or_expired_token_is_404(staff_client, program):
    preview = preview_url(upload(staff_client, GOOD))
    assert staff_client.get("/panel/p/acme/affiliates/import/not-a-token/").status_code == 404
    ImportUpload.objects.update(created_at=timezone.now() - timedelta(days=2))
    assert staff_client.get(preview).status_code == 404
    assert staff_client.post(preview + "confirm/").status_code == 404
    assert Affiliate.objects.count() == 0


def test_pages_answer_admins_only(staff_client, other_staff_client, client, program):
    preview = preview_url(upload(staff_client, GOOD))
    manager = staff_client_with_role(program, ProgramStaff.Role.MANAGER, "manager")
    viewer = staff_client_with_role(program, ProgramStaff.Role.VIEWER)
    assert staff_client.get(START).status_code == 200
    for outsider in (other_staff_client, manager, viewer):
        assert outsider.get(START).status_code == 404
        assert outsider.get(preview).status_code == 404
        assert outsider.post(preview + "confirm/").status_code == 404
        assert upload(outsider, GOOD).status_code == 404
    for url in (START, preview):
        assert client.get(url)["Location"].startswith("/panel/login/")
    assert client.post(preview + "confirm/")["Location"].startswith("/panel/login/")
    assert Affiliate.objects.count() == 0 and ImportUpload.objects.count() == 1


def test_a_token_of_another_program_is_404(staff_client, other_staff_client, program):
    from tests.factories import ProgramFactory

    globex = ProgramFactory(slug="globex")
    preview = preview_url(upload(staff_client, GOOD))
    token = preview.rstrip("/").rsplit("/", 1)[1]
    assert other_staff_client.get(f"/panel/p/{globex.slug}/affiliates/import/{token}/").status_code == 404
    assert (
        other_staff_client.post(f"/panel/p/{globex.slug}/affiliates/import/{token}/confirm/").status_code
        == 404
    )
    assert Affiliate.objects.count() == 0
