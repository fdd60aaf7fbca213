"""Wiping a program's test-mode data: what sk_test_ keys made, so a merchant can test again from zero.

Test mode (docs/decisions.md, "Test mode") is a separate world: test affiliates, test rules, and
the test events, referrals, commissions and refunds they lead to. None of it reaches payouts, and
none of it is needed once the integration works. Live rows are never touched.
"""

from __future__ import annotations

from django.db import transaction

from affiliates.models import Affiliate, Program
from refapp.models import Actor, audit_log
from tracking.models import Event, Referral

from .models import (
    AffiliateConversionDaily,
    AffiliateConversionTotal,
    Commission,
    CommissionRule,
    ConversionDelta,
    FraudFlag,
    ProgramConversionDaily,
    Refund,
)


def _deleted(queryset) -> int:
    """How many rows of the queryset's own model were deleted (cascades aside)."""
    return queryset.delete()[1].get(queryset.model._meta.label, 0)


def program_test_data_wipe(*, program: Program, actor: Actor | None) -> dict[str, int]:
    """Delete every test-mode row of the program, in one transaction; returns counts by kind.

    Order matters: commissions point at rules (PROTECT), events at referrals, and rows of test
    affiliates at the affiliates. Test affiliates' clicks go with them (clicks have no mode); the
    program-wide daily click counts keep them. Safe to run twice: the second run deletes nothing.
    """
    test = {"program": program, "livemode": False}
    with transaction.atomic():
        counts = {
            "commissions": _deleted(Commission.objects.filter(**test)),
            "refunds": _deleted(Refund.objects.filter(**test)),
            "fraud_flags": _deleted(FraudFlag.objects.filter(program=program, event__livemode=False)),
            "events": _deleted(Event.objects.filter(**test)),
            "referrals": _deleted(Referral.objects.filter(**test)),
            "rules": _deleted(CommissionRule.objects.filter(**test)),
            "affiliates": _deleted(Affiliate.objects.filter(**test)),
        }
        # The rollups' test-mode rows, and the log rows the deletes above appended to them.
        for model in (AffiliateConversionDaily, ProgramConversionDaily, AffiliateConversionTotal):
            model.objects.filter(**test).delete()
        ConversionDelta.objects.filter(program_id=program.pk, livemode=False).delete()
        audit_log(actor=actor, action="program.test_data_wiped", obj=program, data=counts)
    return counts
