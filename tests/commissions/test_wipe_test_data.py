"""wipe_test_data deletes what sk_test_ keys made, and nothing live."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from affiliates.models import Affiliate
from commissions.models import Commission, CommissionRule, Refund
from tests.factories import AffiliateFactory, ClickFactory, CommissionRuleFactory
from tracking.models import Event, Referral

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_write_path")]


def sale(order_id, code):
    return {"event": "sale", "order_id": order_id, "referral_code": code, "amount_cents": 1000}


def test_wipe_deletes_test_data_and_keeps_live(
    api_client, test_api_client, program, affiliate, sale_rule, capsys
):
    testy = AffiliateFactory(program=program, code="TESTY", livemode=False)
    CommissionRuleFactory(program=program, livemode=False)
    ClickFactory(program=program, affiliate=testy)
    live = api_client.post("/api/v1/events", sale("L-1", "JOHN")).json()
    test_api_client.post("/api/v1/events", sale("T-1", "TESTY"))
    test_api_client.post("/api/v1/refunds", {"order_id": "T-1", "refund_id": "1", "amount_cents": 100})
    api_client.post("/api/v1/refunds", {"order_id": "L-1", "refund_id": "1", "amount_cents": 100})

    call_command("wipe_test_data", "--program", "acme")
    assert "1 affiliates" in capsys.readouterr().out
    assert list(Affiliate.objects.all()) == [affiliate]
    assert list(CommissionRule.objects.all()) == [sale_rule]
    assert set(Event.objects.values_list("livemode", flat=True)) == {True}
    assert set(Referral.objects.values_list("livemode", flat=True)) == {True}
    assert set(Refund.objects.values_list("livemode", flat=True)) == {True}
    assert Commission.objects.filter(event__public_id=live["id"]).count() == 2  # the sale and its reversal
    assert not Commission.objects.filter(livemode=False).exists()
    call_command("wipe_test_data", "--program", "acme")  # twice is harmless
    assert Affiliate.objects.count() == 1


def test_wipe_of_an_unknown_program_is_an_error(db):
    with pytest.raises(CommandError):
        call_command("wipe_test_data", "--program", "nope")
