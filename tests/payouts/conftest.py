from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import AffiliateFactory, CommissionFactory, CommissionRuleFactory
from tests.fakestripe import FakeStripe

WEBHOOK_SECRET = "whsec_test_refapp"


@pytest.fixture
def fake_stripe(settings):
    with FakeStripe() as fake:
        fake.set_balance("usd", 10_000_000)
        settings.STRIPE_SECRET_KEY = "sk_test_refapp"
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        yield fake


@pytest.fixture
def connected(program, fake_stripe):
    """An active affiliate with a Stripe Express account that can receive payouts."""
    affiliate = AffiliateFactory(program=program, code="JOHN", email="john@partner.example", name="John")
    fake_stripe.set_account("acct_john", payouts_enabled=True)
    affiliate.payout_method = "stripe"
    affiliate.stripe_account_id = "acct_john"
    affiliate.stripe_payouts_enabled = True
    affiliate.save()
    return affiliate


@pytest.fixture
def approved(program):
    """approved(affiliate, cents, order=...) creates an approved live commission."""
    rule = CommissionRuleFactory(program=program)
    counter = iter(range(1, 10_000))

    def make(affiliate, cents, *, status="approved", order=None):
        now = timezone.now()
        return CommissionFactory(
            affiliate=affiliate,
            rule=rule,
            amount_cents=cents,
            status=status,
            order_id=order or f"ORD-{next(counter)}",
            created_at=now - timedelta(days=40),
            hold_until=now - timedelta(days=10),
            approved_at=now,
            event__amount_cents=cents * 5,
            event__received_at=now,
        )

    return make
