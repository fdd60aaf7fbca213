"""Stripe Connect onboarding from the portal: every change of where money goes is audited."""

import pytest
from django.test import Client

from affiliates.models import Affiliate
from payouts.connect import (
    ConnectNotAllowed,
    affiliate_connect_account_set,
    affiliate_connect_status_set,
)
from refapp.models import Actor, AuditLog
from tests.conftest import portal_login
from tests.factories import AffiliateFactory

pytestmark = pytest.mark.django_db


def _audit(affiliate, action):
    return AuditLog.objects.filter(object_id=affiliate.public_id, action=action)


def test_connecting_records_the_account_with_the_affiliate_as_actor(portal_client, affiliate, fake_stripe):
    portal_client.post("/portal/settings/payout/stripe/")
    affiliate.refresh_from_db()
    row = _audit(affiliate, "affiliate.stripe_connected").get()
    assert row.actor_label == f"affiliate:{affiliate.public_id}"
    assert row.data["account"] == affiliate.stripe_account_id
    assert row.data["payout_method"][1] == "stripe"


def test_connecting_twice_records_once(portal_client, affiliate, fake_stripe):
    portal_client.post("/portal/settings/payout/stripe/")
    portal_client.post("/portal/settings/payout/stripe/")
    assert _audit(affiliate, "affiliate.stripe_connected").count() == 1


def test_returning_from_stripe_records_the_change(portal_client, affiliate, fake_stripe):
    portal_client.post("/portal/settings/payout/stripe/")
    affiliate.refresh_from_db()
    fake_stripe.set_account(affiliate.stripe_account_id, payouts_enabled=True)
    portal_client.get("/portal/settings/payout/stripe/return/")
    affiliate.refresh_from_db()
    assert affiliate.stripe_payouts_enabled
    row = _audit(affiliate, "affiliate.stripe_account_updated").get()
    assert row.actor_label == f"affiliate:{affiliate.public_id}"
    assert row.data["stripe_payouts_enabled"] == [False, True]
    # Nothing changed the second time: no second row.
    portal_client.get("/portal/settings/payout/stripe/return/")
    assert _audit(affiliate, "affiliate.stripe_account_updated").count() == 1


def test_a_pending_affiliate_cannot_connect_and_nothing_is_recorded(program, fake_stripe):
    pending = AffiliateFactory(program=program, status="pending", email="p@example.com")
    portal_login(Client(), pending).post("/portal/settings/payout/stripe/")
    pending.refresh_from_db()
    assert (
        pending.stripe_account_id == "" and not AuditLog.objects.filter(object_id=pending.public_id).exists()
    )


def test_account_set_rechecks_under_the_lock(affiliate):
    actor = Actor(f"affiliate:{affiliate.public_id}")
    first = affiliate_connect_account_set(affiliate=affiliate, account_id="acct_1", actor=actor)
    # A second tab that read the affiliate before the first write: the first account sticks.
    stale = Affiliate.objects.get(pk=affiliate.pk)
    stale.stripe_account_id = ""
    second = affiliate_connect_account_set(affiliate=stale, account_id="acct_2", actor=actor)
    assert first.stripe_account_id == second.stripe_account_id == "acct_1"
    assert _audit(affiliate, "affiliate.stripe_connected").count() == 1


def test_account_set_refuses_an_affiliate_suspended_meanwhile(affiliate):
    Affiliate.objects.filter(pk=affiliate.pk).update(status=Affiliate.Status.SUSPENDED)
    with pytest.raises(ConnectNotAllowed):
        affiliate_connect_account_set(affiliate=affiliate, account_id="acct_1", actor=None)
    assert not _audit(affiliate, "affiliate.stripe_connected").exists()


def test_status_of_an_account_replaced_meanwhile_is_ignored(affiliate):
    affiliate_connect_account_set(affiliate=affiliate, account_id="acct_new", actor=None)
    result = affiliate_connect_status_set(
        affiliate=affiliate, account_id="acct_old", payouts_enabled=True, actor=None
    )
    assert not result.stripe_payouts_enabled
    assert not _audit(affiliate, "affiliate.stripe_account_updated").exists()
