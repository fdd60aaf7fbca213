"""The team page: admins invite people by email with a role, change roles and remove people; an
invited viewer sets a password from the email, sees the panel and changes nothing; removing someone
ends their sessions."""

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client, TestCase
from django.urls import get_resolver

from affiliates.models import Affiliate, ApiKey, ProgramStaff
from commissions.models import Commission
from payouts.models import ReconciliationFinding, ReconciliationRun
from refapp.models import AuditLog
from tests.factories import (
    CommissionFactory,
    CommissionRuleFactory,
    FraudFlagFactory,
    PartnerGroupFactory,
    PayoutFactory,
    webhook_endpoint_with_failed_delivery,
)
from tests.helpers import staff_client_with_role
from webhooks.models import WebhookEndpoint, WebhookMessage

pytestmark = pytest.mark.django_db

TEAM = "/panel/p/acme/team/"
PASSWORD = "a long Passphrase 7"


def invite(client, email="vi@example.com", role="viewer"):
    with TestCase.captureOnCommitCallbacks(execute=True):  # the email is queued on commit
        return client.post(TEAM, {"email": email, "role": role})


def accept(email_message) -> Client:
    """The invited person follows the emailed link, chooses a password and signs in."""
    url = re.search(r"http://\S+/panel/welcome/\S+/", email_message.body).group(0)
    path = (
        url.split("http://127.0.0.1:8000", 1)[-1] if "127.0.0.1:8000" in url else "/" + url.split("/", 3)[3]
    )
    person = Client()
    assert person.get(path).status_code == 200
    response = person.post(path, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert response.status_code == 302
    assert person.get(path).status_code == 404  # the link works once
    return person


def member(email) -> ProgramStaff:
    return ProgramStaff.objects.select_related("user").get(user__email=email)


def test_admin_invites_a_viewer_who_sets_a_password_and_signs_in(staff_client, program):
    response = invite(staff_client)
    assert response.status_code == 302
    viewer = member("vi@example.com")
    assert viewer.role == "viewer" and viewer.user.is_staff and not viewer.user.has_usable_password()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["vi@example.com"]
    person = accept(mail.outbox[0])
    assert person.get("/panel/p/acme/").status_code == 200
    assert Client().login(username="vi@example.com", password=PASSWORD)
    assert AuditLog.objects.filter(action="staff.invited").count() == 1
    assert AuditLog.objects.filter(action="user.password_changed").count() == 1


def test_an_existing_account_is_told_it_was_added(staff_client, program):
    User.objects.create_user("old", "old@example.com", "pw-old-1234567", is_staff=True)
    invite(staff_client, email="OLD@example.com", role="manager")
    assert member("old@example.com").role == "manager"
    assert "/panel/p/acme/" in mail.outbox[0].body and "welcome" not in mail.outbox[0].body


def test_inviting_someone_twice_is_a_conflict(staff_client, program):
    invite(staff_client)
    again = invite(staff_client)
    assert again.status_code == 409 and "already on the team" in again.text
    assert ProgramStaff.objects.filter(user__email="vi@example.com").count() == 1


def test_admin_changes_a_role_and_removes_a_member(staff_client, program):
    invite(staff_client)
    viewer = member("vi@example.com")
    assert staff_client.post(f"{TEAM}{viewer.pk}/role/", {"role": "manager"}).status_code == 302
    assert member("vi@example.com").role == "manager"
    assert staff_client.post(f"{TEAM}{viewer.pk}/remove/").status_code == 302
    assert not ProgramStaff.objects.filter(pk=viewer.pk).exists()
    assert not User.objects.get(email="vi@example.com").is_staff  # on no team any more
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"staff.invited", "staff.role_changed", "staff.removed"} <= actions


def test_the_last_admin_cannot_be_demoted_or_removed(staff_client, staff_user, program):
    me = ProgramStaff.objects.get(user=staff_user)
    staff_client.post(f"{TEAM}{me.pk}/role/", {"role": "viewer"})
    staff_client.post(f"{TEAM}{me.pk}/remove/")
    assert ProgramStaff.objects.get(pk=me.pk).role == "admin"


def test_removing_a_member_ends_their_sessions(staff_client, program):
    invite(staff_client)
    person = accept(mail.outbox[0])
    other_browser = Client()
    assert other_browser.login(username="vi@example.com", password=PASSWORD)
    assert person.get("/panel/p/acme/").status_code == 200
    staff_client.post(f"{TEAM}{member('vi@example.com').pk}/remove/")
    for browser in (person, other_browser):
        response = browser.get("/panel/p/acme/")
        assert response.status_code == 302 and response["Location"].startswith("/panel/login/")
    assert staff_client.get("/panel/p/acme/").status_code == 200  # the admin's own session stays


@pytest.mark.parametrize("role", ["viewer", "manager"])
def test_only_admins_manage_the_team(staff_client, program, role):
    invite(staff_client, email="x@example.com")
    target = member("x@example.com")
    other = staff_client_with_role(program, role)
    page = other.get(TEAM)
    assert page.status_code == 200 and "x@example.com" in page.text and "Send invitation" not in page.text
    assert invite(other, email="y@example.com").status_code == 404
    assert other.post(f"{TEAM}{target.pk}/role/", {"role": "admin"}).status_code == 404
    assert other.post(f"{TEAM}{target.pk}/remove/").status_code == 404
    assert (
        member("x@example.com").role == "viewer" and not User.objects.filter(email="y@example.com").exists()
    )


def test_team_pages_are_hidden_from_other_programs_and_anonymous(
    staff_client, other_staff_client, client, program
):
    invite(staff_client)
    target = member("vi@example.com")
    assert other_staff_client.get(TEAM).status_code == 404
    assert other_staff_client.post(f"{TEAM}{target.pk}/remove/").status_code == 404
    assert client.get(TEAM)["Location"].startswith("/panel/login/")
    assert client.post(f"{TEAM}{target.pk}/remove/")["Location"].startswith("/panel/login/")
    assert ProgramStaff.objects.filter(pk=target.pk).exists()


# The forms that only change something: a new or edited group, rule or webhook endpoint, an
# invitation, and actions; and the privacy pages, which only a program's admins may open.
WRITE_ONLY = (
    r"(/(new|invite|run|retry|remove|revoke|resolve|status|bulk|role|deactivate|mark-paid|check|decide)/"
    r"|/(edit|delete|rotate|test|replay-failed|replay|privacy)/"
    r"|/groups/grp_\w+/|/rules/rule_\w+/"
    # Full bank numbers and tax ids: for the staff who pay (bank files) or admins (tax data) only.
    r"|/payouts/(sepa\.xml|wise\.csv|tax-report\.csv)|/tax-form/"
    # Imports write affiliates and money history: admins only (a viewer gets 404 on every step).
    r"|/affiliates/import/|/affiliates/import/[\w-]+/|/affiliates/import/[\w-]+/confirm/)$"
)


def _program_urls(slug: str, ids: dict[str, str]) -> list[str]:
    """Every panel URL of a program, its arguments filled with the ids of real objects."""
    urls = []
    for pattern in get_resolver().url_patterns:
        if str(pattern.pattern) != "panel/":
            continue
        for sub in pattern.url_patterns:
            route = str(sub.pattern)
            if not route.startswith("p/<slug:slug>/"):
                continue
            path = route.replace("<slug:slug>", slug)
            for name, value in ids.items():
                path = re.sub(rf"<(?:\w+:)?{name}>", value, path)
            urls.append(path)
    return urls


def test_an_invited_viewer_sees_everything_and_changes_nothing_anywhere(staff_client, program, affiliate):
    invite(staff_client)
    viewer = accept(mail.outbox[0])
    rule = CommissionRuleFactory(program=program)
    commission = CommissionFactory(affiliate=affiliate, rule=rule)
    flag = FraudFlagFactory(commission=commission)
    payout = PayoutFactory(affiliate=affiliate)
    group = PartnerGroupFactory(program=program)
    key = ApiKey.objects.create(program=program, prefix="sk_live_x", key_hash="h" * 64)
    member_id = str(member("admin@acme.example").pk)
    endpoint, delivery = webhook_endpoint_with_failed_delivery(program)
    finding = ReconciliationFinding.objects.create(
        program=program,
        period="2026-11",
        kind="unknown_transfer",
        key="tr_1Stray",
        detail="A stray transfer.",
        first_seen_at=payout.created_at,
        last_seen_at=payout.created_at,
    )
    cases = {
        "reconciliation/<str:public_id>": finding.public_id,
        "webhooks/<str:public_id>": endpoint.public_id,
        "affiliates/<str:public_id>": affiliate.public_id,
        "groups/<str:public_id>": group.public_id,
        "rules/<str:public_id>": rule.public_id,
        "commissions/<str:public_id>": commission.public_id,
        "payouts/<str:public_id>": payout.public_id,
    }
    urls = []
    for url in _program_urls(
        "acme",
        {
            "key_id": str(key.pk),
            "flag_id": str(flag.pk),
            "member_id": member_id,
            "delivery_id": delivery.public_id,
            "token": "an-import-token",
        },
    ):
        for prefix, public_id in cases.items():
            url = url.replace(
                prefix.split("/")[0] + "/<str:public_id>", prefix.split("/")[0] + "/" + public_id
            )
        urls.append("/panel/" + url)
    assert len(urls) > 30 and not [u for u in urls if "<" in u]
    before = (
        list(Affiliate.objects.values_list("status", "group_id", "name")),
        list(Commission.objects.values_list("status", "amount_cents")),
        list(ProgramStaff.objects.values_list("role")),
        list(ApiKey.objects.values_list("revoked_at")),
        list(WebhookEndpoint.objects.values_list("url", "is_active", "secret")),
        WebhookMessage.objects.count(),
        AuditLog.objects.count(),
        list(ReconciliationFinding.objects.values_list("status", "note")),
        ReconciliationRun.objects.count(),
    )
    body = {
        "status": "suspended",
        "reason": "x",
        "name": "Changed",
        "email": "z@example.com",
        "role": "admin",
        "action": "approve",
        "ids": [commission.public_id],
        "mode": "live",
        "resolution": "dismissed",
        "period": "2026-11",
        "note": "changed",
    }
    for url in urls:
        assert viewer.post(url, body).status_code in (404, 405), url  # 405: a read-only page
    # Every page is readable but the forms that only change something (new, invite, edit, actions).
    unreadable = {url for url in urls if viewer.get(url).status_code != 200}
    assert all(re.search(WRITE_ONLY, url) for url in unreadable), unreadable
    after = (
        list(Affiliate.objects.values_list("status", "group_id", "name")),
        list(Commission.objects.values_list("status", "amount_cents")),
        list(ProgramStaff.objects.values_list("role")),
        list(ApiKey.objects.values_list("revoked_at")),
        list(WebhookEndpoint.objects.values_list("url", "is_active", "secret")),
        WebhookMessage.objects.count(),
        AuditLog.objects.count(),
        list(ReconciliationFinding.objects.values_list("status", "note")),
        ReconciliationRun.objects.count(),
    )
    assert after == before
