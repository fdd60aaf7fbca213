from tests.payouts.conftest import fake_stripe  # noqa: F401 - the same fake Stripe as the payout tests
