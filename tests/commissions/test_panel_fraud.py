import pytest

from affiliates.models import ProgramStaff
from commissions.models import FraudFlag
from refapp.models import AuditLog
from tests.factories import AffiliateFactory, CommissionFactory, FraudFlagFactory, ProgramFactory
from tests.helpers import staff_client_with_role

pytestmark = pytest.mark.django_db

QUEUE = "/panel/p/acme/fraud/"


def resolve(flag):
    return f"/panel/p/acme/fraud/{flag.pk}/resolve/"


@pytest.fixture
def flagged(affiliate):
    commission = CommissionFactory(affiliate=affiliate, status="rejected", order_id="SELF-1")
    return FraudFlagFactory(commission=commission), commission


def test_queue_answers_its_staff_and_hides_from_others(
    staff_client, other_staff_client, client, staff_user, flagged
):
    assert staff_client.get(QUEUE).status_code == 200
    assert other_staff_client.get(QUEUE).status_code == 404
    assert client.get(QUEUE)["Location"].startswith("/panel/login/")


def test_resolve_is_refused_to_outsiders_viewers_and_anonymous(
    program, other_staff_client, client, staff_user, flagged
):
    flag, _ = flagged
    viewer = staff_client_with_role(program, ProgramStaff.Role.VIEWER)
    assert other_staff_client.post(resolve(flag), {"action": "dismiss"}).status_code == 404
    assert viewer.post(resolve(flag), {"action": "dismiss"}).status_code == 404
    assert client.post(resolve(flag), {"action": "dismiss"})["Location"].startswith("/panel/login/")
    flag.refresh_from_db()
    assert flag.status == "open"


def test_queue_lists_open_flags_and_flagged_affiliates(staff_client, program, affiliate, flagged):
    flag, commission = flagged
    other = AffiliateFactory(program=program, name="Clean")
    resolved = FraudFlagFactory(commission=CommissionFactory(affiliate=other, status="rejected"))
    resolved.status = FraudFlag.Status.CONFIRMED
    resolved.save()
    response = staff_client.get(QUEUE)
    assert response.context["flags"] == [flag]
    assert response.context["flags"][0].commission_rows == [commission]
    assert [a.name for a in response.context["affiliates"]] == ["John"]
    assert response.context["affiliates"][0].open_flags == 1
    assert "SELF-1" in response.text and "Dismiss (release commission)" in response.text
    assert resolved in response.context["resolved"]


def test_dismiss_releases_the_commission(staff_client, flagged):
    flag, commission = flagged
    response = staff_client.post(resolve(flag), {"action": "dismiss"})
    assert response.status_code == 302 and response["Location"] == QUEUE
    flag.refresh_from_db()
    commission.refresh_from_db()
    assert flag.status == "dismissed" and flag.resolved_by.startswith("user:")
    assert commission.status == "pending"
    assert AuditLog.objects.filter(action="fraud_flag.dismissed").exists()


def test_confirm_keeps_the_commission_rejected(staff_client, flagged):
    flag, commission = flagged
    staff_client.post(resolve(flag), {"action": "confirm"})
    flag.refresh_from_db()
    commission.refresh_from_db()
    assert flag.status == "confirmed" and commission.status == "rejected"


def test_resolving_twice_or_with_a_bad_action_changes_nothing(staff_client, flagged):
    flag, commission = flagged
    bad = staff_client.post(resolve(flag), {"action": "delete"}, follow=True)
    assert "Choose whether to dismiss or confirm" in bad.text
    staff_client.post(resolve(flag), {"action": "confirm"})
    again = staff_client.post(resolve(flag), {"action": "dismiss"}, follow=True)
    assert "already resolved" in again.text
    flag.refresh_from_db()
    commission.refresh_from_db()
    assert flag.status == "confirmed" and commission.status == "rejected"


def test_a_foreign_flag_is_404(staff_client):
    stranger = AffiliateFactory(program=ProgramFactory(slug="globex"))
    flag = FraudFlagFactory(commission=CommissionFactory(affiliate=stranger, status="rejected"))
    assert staff_client.post(resolve(flag), {"action": "dismiss"}).status_code == 404
    assert staff_client.get(resolve(flag)).status_code == 405
