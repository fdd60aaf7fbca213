"""The scale benchmark's events figure compares the same kind of event against more clicks, nothing
else (bench/scale.py load_seed and conversions_reset, run.py scale_extra; bench/LOG.md 2026-12-07)."""

import json
import os
from pathlib import Path

import pytest
from django.db import connection

from commissions.models import Commission, ConversionDelta
from tests.factories import (
    AffiliateFactory,
    ClickFactory,
    CommissionFactory,
    ProgramFactory,
    ReferralFactory,
)
from tracking.models import Event, Referral

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="bench/scale.py runs on PostgreSQL only",
    ),
]


def test_load_seed_gives_only_visitors_without_a_referral(tmp_path):
    from bench.scale import SCALE_SLUG, load_seed

    program = ProgramFactory(slug=SCALE_SLUG)
    affiliate = AffiliateFactory(program=program)
    ClickFactory(affiliate=affiliate, visitor_id="sv-new-visitor")
    ClickFactory(affiliate=affiliate, visitor_id="sv-new-visitor")  # several clicks: listed once
    ClickFactory(affiliate=affiliate, visitor_id="sv-converted")
    ReferralFactory(affiliate=affiliate, visitor_id="sv-converted")

    seed = load_seed(tmp_path)

    visitors = Path(seed["visitors_file"]).read_text().split()
    assert visitors == ["sv-new-visitor"]
    assert seed["clicks"] == 1 and seed["secret"].startswith("sk_live_")


def test_conversions_reset_empties_the_conversion_tables_and_marks_the_seed_incomplete():
    from bench.scale import META_TABLE, _meta, conversions_reset

    affiliate = AffiliateFactory()
    CommissionFactory(affiliate=affiliate, order_id="ORD-1")
    ReferralFactory(affiliate=affiliate)
    with connection.cursor() as cursor:
        _meta(cursor)
        cursor.execute(
            f"INSERT INTO {META_TABLE} (key, value) VALUES ('seed', %s)", [json.dumps({"complete": True})]
        )
        # The bench runs it in autocommit; inside the test's transaction, the deferred foreign key
        # checks of the rows above must have run before a TRUNCATE.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert Event.objects.exists() and Commission.objects.exists() and ConversionDelta.objects.exists()

    out = conversions_reset()

    assert out["emptied"]["tracking_event"] == 1 and out["emptied"]["commissions_commission"] == 1
    assert not Event.objects.exists()
    assert not Commission.objects.exists()
    assert not Referral.objects.exists()
    assert not ConversionDelta.objects.exists()
    assert affiliate.program.affiliates.exists()  # the program and its affiliates stay
    with connection.cursor() as cursor:
        assert _meta(cursor)["complete"] is False
