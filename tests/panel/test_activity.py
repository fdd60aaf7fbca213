"""The activity log page and readable history: labels, actor names, changes, object links, filters."""

from datetime import timedelta

import pytest
from django.utils import timezone

from affiliates.models import Affiliate, ProgramStaff
from affiliates.services import affiliate_set_status, apikey_create
from commissions.services import commission_set_status
from refapp.models import Actor, AuditLog
from refapp.panel.history import action_label, readable_rows
from tests.factories import AffiliateFactory, CommissionFactory
from tests.helpers import staff_client_with_role

pytestmark = pytest.mark.django_db

ACTIVITY = "/panel/p/acme/activity/"


@pytest.fixture
def history(program, staff_user, affiliate):
    """An admin suspends John; an API key approves one of his commissions; the system approves another."""
    affiliate_set_status(
        affiliate=affiliate, status="suspended", reason="spam", actor=Actor.for_user(staff_user)
    )
    key, _secret = apikey_create(program=program, mode="live", name="Zapier")
    now = timezone.now()
    by_api = CommissionFactory(affiliate=affiliate, amount_cents=1234)
    commission_set_status(
        commission=by_api, status="approved", reason="checked", actor=Actor(f"api:{key.prefix}"), now=now
    )
    by_system = CommissionFactory(affiliate=affiliate)
    commission_set_status(commission=by_system, status="approved", reason="hold ended", actor=None, now=now)
    return {"key": key, "by_api": by_api, "by_system": by_system}


def rows_of(response) -> list:
    return list(response.context["page"].object_list)


def test_readable_labels_actors_changes_and_links(staff_client, program, affiliate, history):
    response = staff_client.get(ACTIVITY)
    assert response.status_code == 200
    text = response.text
    key = history["key"]
    assert "Affiliate suspended" in text and "Commission approved" in text
    assert "admin@acme.example" in text  # the user's email, not "user:1"
    assert f"API key ‘Zapier’ ({key.prefix}…)" in text  # not "api:sk_live_…"
    assert "System (scheduled job)" in text
    assert "status: active → suspended" in text and "reason: spam" in text
    assert "status: pending → approved" in text
    table = text.split('id="activity-table"')[1]
    assert "{'from'" not in table and "user:" not in table and "api:" not in table
    assert f'href="/panel/p/acme/affiliates/{affiliate.public_id}/"' in text
    assert f'href="/panel/p/acme/commissions/{history["by_api"].public_id}/"' in text


def test_every_action_the_code_writes_has_a_label():
    # A label is a sentence, never the raw key.
    assert action_label("commission.reversed") == "Commission reversed (clawback)"
    assert action_label("something.new_thing") == "Something: new thing"


def test_money_in_data_is_formatted_in_the_program_currency(program, affiliate):
    entry = AuditLog.objects.create(
        actor_label="stripe",
        action="order.refunded",
        program_id=program.pk,
        object_type="tracking.event",
        object_id="evt_1",
        data={"refund_id": "re_1", "amount_cents": 4990},
    )
    [row] = readable_rows([entry], program)
    assert row.actor == "Stripe" and row.label == "Order refunded"
    assert [(c.field, c.old, c.new) for c in row.changes] == [
        ("refund id", None, "re_1"),
        ("amount", None, "49.90 USD"),
    ]
    assert row.object_url == "/panel/p/acme/commissions/?order=evt_1"


def test_filters_who_what_which_object_and_when(staff_client, staff_user, program, affiliate, history):
    by_user = rows_of(staff_client.get(ACTIVITY, {"actor": f"user:{staff_user.pk}"}))
    assert {r.action for r in by_user} == {"affiliate.suspended"}
    by_api = rows_of(staff_client.get(ACTIVITY, {"actor": "api"}))
    assert [r.object_id for r in by_api] == [history["by_api"].public_id]
    commissions = rows_of(staff_client.get(ACTIVITY, {"what": "commission"}))
    assert {r.action for r in commissions} == {"commission.approved"} and len(commissions) == 2
    exact = rows_of(staff_client.get(ACTIVITY, {"what": "affiliate.suspended"}))
    assert len(exact) == 1
    one = rows_of(staff_client.get(ACTIVITY, {"object_id": history["by_system"].public_id}))
    assert [r.actor for r in one] == ["System (scheduled job)"]
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert rows_of(staff_client.get(ACTIVITY, {"date_from": tomorrow})) == []
    # A bad date filters nothing and says so, rather than failing.
    bad = staff_client.get(ACTIVITY, {"date_from": "2026-02-31"})
    assert bad.status_code == 200 and len(rows_of(bad)) == 4  # with "API key created"


def test_only_the_programs_rows_and_paginated(staff_client, program, affiliate, history, other_staff_client):
    other = AffiliateFactory()  # another program's affiliate and its audit row
    affiliate_set_status(affiliate=other, status="suspended", reason="x", actor=None)
    assert all(r.entry.program_id == program.pk for r in rows_of(staff_client.get(ACTIVITY)))
    AuditLog.objects.bulk_create(
        AuditLog(
            actor_label="system",
            action="commission.approved",
            program_id=program.pk,
            object_type="commissions.commission",
            object_id=f"com_{n}",
        )
        for n in range(60)
    )
    first = staff_client.get(ACTIVITY)
    assert len(rows_of(first)) == 50 and 'rel="next"' in first.text
    second = staff_client.get(ACTIVITY, {"page": 2})
    assert len(rows_of(second)) == 14 and 'rel="prev"' in second.text


def test_viewers_read_it_outsiders_and_anonymous_do_not(program, other_staff_client, client, history):
    viewer = staff_client_with_role(program, ProgramStaff.Role.VIEWER)
    assert viewer.get(ACTIVITY).status_code == 200
    assert other_staff_client.get(ACTIVITY).status_code == 404
    assert client.get(ACTIVITY)["Location"].startswith("/panel/login/")


def test_linked_from_the_navigation(staff_client, program):
    assert f'href="{ACTIVITY}"' in staff_client.get("/panel/p/acme/affiliates/").text


def test_affiliate_and_commission_history_are_readable(staff_client, affiliate, history):
    text = staff_client.get(f"/panel/p/acme/affiliates/{affiliate.public_id}/").text
    assert "Affiliate suspended" in text and "status: active → suspended" in text
    assert "admin@acme.example" in text
    detail = staff_client.get(f"/panel/p/acme/commissions/{history['by_api'].public_id}/").text
    assert "API key ‘Zapier’" in detail and "status: pending → approved" in detail


def test_an_affiliate_acting_in_the_portal_is_named(program, affiliate):
    entry = AuditLog.objects.create(
        actor_label=f"affiliate:{affiliate.public_id}",
        action="affiliate.payout_method_changed",
        program_id=program.pk,
        object_type="affiliates.affiliate",
        object_id=affiliate.public_id,
        data={"from": None, "to": {"method": "paypal", "paypal_email": "j@pp.example"}},
    )
    [row] = readable_rows([entry], program)
    assert row.actor == "John (affiliate)"
    assert row.object_name == "John" and row.object_url.endswith(f"/affiliates/{affiliate.public_id}/")
    [change] = row.changes
    assert change.field == "payout method" and change.old == "—"
    assert change.new == "method paypal, paypal email j@pp.example"
    assert Affiliate.objects.filter(pk=affiliate.pk).exists()
