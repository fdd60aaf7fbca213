"""unsaved(Model, **kw) builds the same instance as Model(**kw) for the conversion path's models."""

from datetime import UTC, datetime

import pytest

from affiliates.models import Affiliate
from commissions.models import Commission, CommissionRule, FraudFlag
from refapp.instances import unsaved
from refapp.models import AuditLog
from tracking.models import Event, Referral

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def same(model, **kwargs):
    """Build both ways and compare every attribute, the related-object cache and the state."""
    expected, got = model(**kwargs), unsaved(model, **kwargs)
    assert type(got) is model
    plain = {k: v for k, v in expected.__dict__.items() if k != "_state"}
    assert {k: v for k, v in got.__dict__.items() if k != "_state"} == plain
    assert got._state.adding is expected._state.adding is True
    assert got._state.db == expected._state.db
    assert got._state.fields_cache.keys() == expected._state.fields_cache.keys()
    for name, value in expected._state.fields_cache.items():
        assert got._state.fields_cache[name] is value
    return got


def test_every_conversion_model_matches_its_constructor(program, affiliate):
    event = same(
        Event,
        public_id="evt_1",
        program=program,
        livemode=True,
        name="sale",
        order_id="o-1",
        customer_id="",
        visitor_id="v1234567",
        referral_code="",
        amount_cents=9900,
        currency="USD",
        customer_email_hash="",
        ip_hash="",
        metadata={"plan": "pro"},
        occurred_at=NOW,
        received_at=NOW,
        source="api",
    )
    assert event.program is program and event.program_id == program.pk
    assert event.affiliate_id is None and event.response == {}
    unsaved_affiliate = same(
        Affiliate, id=affiliate.pk, program=program, public_id="aff_1", code="ANN", status="active"
    )
    referral = same(
        Referral,
        public_id="ref_1",
        program=program,
        livemode=True,
        affiliate=unsaved_affiliate,
        customer_id=None,
        visitor_id="v1234567",
        click_id=None,
        method="click",
        created_at=NOW,
    )
    same(Referral, id=5, public_id="ref_2", created_at=NOW)
    rule = same(CommissionRule, id=3, public_id="rule_1", type="percent", rate_bp=2000, tiers=[])
    commission = same(
        Commission,
        public_id="com_1",
        program=program,
        livemode=True,
        affiliate=affiliate,
        event=event,
        rule=rule,
        amount_cents=1980,
        currency="USD",
        status="pending",
        status_reason="",
        hold_until=NOW,
        inputs={"rate_bp": 2000},
        created_at=NOW,
    )
    assert commission.rule_id == 3 and commission.event_id is None and referral.affiliate_id == affiliate.pk
    same(FraudFlag, program=program, affiliate=affiliate, event=event, reason="x", details={}, created_at=NOW)
    same(
        AuditLog,
        actor=None,
        actor_label="api",
        action="a",
        program_id=program.pk,
        object_type="t",
        object_id="1",
    )


def test_mutable_defaults_are_not_shared(program):
    first, second = unsaved(Event, program=program), unsaved(Event, program=program)
    assert first.metadata == second.metadata == {} and first.metadata is not second.metadata


def test_unknown_field_and_wrong_related_type_are_refused(program):
    with pytest.raises(TypeError, match="no field 'nope'"):
        unsaved(Event, nope=1)
    with pytest.raises(ValueError, match="must be a Program instance"):
        unsaved(Event, program=object())
