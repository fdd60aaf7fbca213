from datetime import timedelta

import pytest
from django.utils import timezone

from commissions.models import Commission
from tests.factories import AffiliateFactory, CommissionRuleFactory
from tests.fakestripe import FakeStripe
from tracking.models import Event

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
        event = Event.objects.create(
            program=program,
            name="sale",
            order_id=order or f"ORD-{next(counter)}",
            amount_cents=cents * 5,
            currency="USD",
            occurred_at=now - timedelta(days=40),
            received_at=now,
            affiliate=affiliate,
            source="api",
        )
        return Commission.objects.create(
            program=program,
            affiliate=affiliate,
            event=event,
            rule=rule,
            amount_cents=cents,
            currency="USD",
            status=status,
            hold_until=now - timedelta(days=10),
            created_at=now - timedelta(days=40),
            approved_at=now,
        )

    return make
