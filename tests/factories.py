"""factory-boy factories for the rows tests need, written straight to the database.

`CommissionFactory()` alone builds a consistent chain: a program, an active affiliate of it, and a
live sale event of that affiliate at the commission's own time. Amounts are integer minor units in
the program's currency. Rows go through the ORM's plain `create`, exactly as the code's own writes
do, so the database triggers that keep the conversion rollups fire for them; click rollups are
folded by `tracking.rollups` from an id watermark, as in production.
"""

from datetime import timedelta

import factory
from django.utils import timezone

from affiliates.models import Affiliate, PartnerGroup, Program
from commissions.models import Commission, CommissionRule, FraudFlag
from payouts.models import Payout
from tracking.models import Click, Event, Referral


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Program
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"program-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    website = factory.LazyAttribute(lambda o: f"https://{o.slug}.example")
    currency = "USD"
    cookie_days = 30
    hold_days = 30
    allowed_origins = factory.LazyFunction(list)
    ref_params = factory.LazyFunction(list)


class PartnerGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PartnerGroup

    program = factory.SubFactory(ProgramFactory)
    name = factory.Sequence(lambda n: f"Group {n}")


class AffiliateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Affiliate

    program = factory.SubFactory(ProgramFactory)
    name = factory.Sequence(lambda n: f"Partner {n}")
    email = factory.Sequence(lambda n: f"partner{n}@example.com")
    code = factory.Sequence(lambda n: f"CODE{n}")
    status = Affiliate.Status.ACTIVE


class CommissionRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CommissionRule

    program = factory.SubFactory(ProgramFactory)
    event_name = "sale"
    type = CommissionRule.Type.PERCENT
    rate_bp = 2000


class ClickFactory(factory.django.DjangoModelFactory):
    """A script click of the affiliate, now. One visitor id unless a test names another, so
    several default clicks count as one unique visitor."""

    class Meta:
        model = Click

    affiliate = factory.SubFactory(AffiliateFactory)
    program = factory.SelfAttribute("affiliate.program")
    visitor_id = "visitor-0001"
    created_at = factory.LazyFunction(timezone.now)


class ReferralFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Referral

    affiliate = factory.SubFactory(AffiliateFactory)
    program = factory.SelfAttribute("affiliate.program")
    livemode = True
    customer_id = None
    # Keyed by the customer when there is one, by the visitor otherwise.
    visitor_id = factory.LazyAttribute(lambda o: "" if o.customer_id else f"v-{o.affiliate.code}")
    method = "click"
    created_at = factory.LazyFunction(timezone.now)


class EventFactory(factory.django.DjangoModelFactory):
    """A live sale of 100.00 received when it occurred. With an affiliate it belongs to the
    affiliate's program and is attributed by its code unless `attribution` says otherwise; without
    one it is unattributed. No order id unless given."""

    class Meta:
        model = Event

    affiliate = None
    program = factory.Maybe(
        "affiliate",
        yes_declaration=factory.SelfAttribute("affiliate.program"),
        no_declaration=factory.SubFactory(ProgramFactory),
    )
    livemode = True
    name = "sale"
    order_id = None
    amount_cents = 10_000
    currency = factory.SelfAttribute("program.currency")
    occurred_at = factory.LazyFunction(timezone.now)
    received_at = factory.SelfAttribute("occurred_at")
    click = None
    attribution = factory.LazyAttribute(
        lambda o: Event.Attribution.CODE if o.affiliate else Event.Attribution.NONE
    )
    referral_code = factory.LazyAttribute(
        lambda o: o.affiliate.code if o.affiliate and o.attribution == Event.Attribution.CODE else ""
    )


class CommissionFactory(factory.django.DjangoModelFactory):
    """A pending 20.00 commission on its own sale event (pass `event=` to share one), held for the
    program's `hold_days` from `created_at`. `order_id` names the order of the event it builds."""

    class Meta:
        model = Commission
        exclude = ("order_id",)

    affiliate = factory.SubFactory(AffiliateFactory)
    program = factory.SelfAttribute("affiliate.program")
    livemode = True
    created_at = factory.LazyFunction(timezone.now)
    order_id = None
    event = factory.SubFactory(
        EventFactory,
        program=factory.SelfAttribute("..program"),
        affiliate=factory.SelfAttribute("..affiliate"),
        occurred_at=factory.SelfAttribute("..created_at"),
        livemode=factory.SelfAttribute("..livemode"),
        order_id=factory.SelfAttribute("..order_id"),
    )
    rule = None
    kind = Commission.Kind.COMMISSION
    reverses = None
    amount_cents = 2_000
    currency = factory.SelfAttribute("program.currency")
    status = Commission.Status.PENDING
    hold_until = factory.LazyAttribute(lambda o: o.created_at + timedelta(days=o.program.hold_days))
    inputs = factory.LazyAttribute(
        lambda o: {
            "rule": o.rule.public_id if o.rule else None,
            "type": "percent",
            "rate_bp": 2000,
            "event_amount_cents": o.event.amount_cents,
            "amount_cents": o.amount_cents,
            "attribution": "code",
            "event": o.event.name,
            "currency": o.program.currency,
        }
    )


class FraudFlagFactory(factory.django.DjangoModelFactory):
    """An open self-referral flag; pass `commission=` to flag that commission's event."""

    class Meta:
        model = FraudFlag
        exclude = ("commission",)

    commission = None
    affiliate = factory.Maybe(
        "commission",
        yes_declaration=factory.SelfAttribute("commission.affiliate"),
        no_declaration=factory.SubFactory(AffiliateFactory),
    )
    program = factory.SelfAttribute("affiliate.program")
    event = factory.LazyAttribute(lambda o: o.commission.event if o.commission else None)
    reason = FraudFlag.Reason.SELF_REFERRAL_EMAIL
    details = factory.LazyAttribute(
        lambda o: (
            {"commissions": [o.commission.public_id], "order_id": o.commission.event.order_id}
            if o.commission
            else {}
        )
    )
    created_at = factory.LazyFunction(timezone.now)


class PayoutFactory(factory.django.DjangoModelFactory):
    """A pending PayPal payout of 50.00 for this month's period."""

    class Meta:
        model = Payout

    affiliate = factory.SubFactory(AffiliateFactory)
    program = factory.SelfAttribute("affiliate.program")
    period = factory.LazyFunction(lambda: timezone.now().strftime("%Y-%m"))
    method = Payout.Method.PAYPAL
    destination = factory.SelfAttribute("affiliate.email")
    amount_cents = 5_000
    currency = factory.SelfAttribute("program.currency")
    status = Payout.Status.PENDING
    created_at = factory.LazyFunction(timezone.now)


def webhook_endpoint_with_failed_delivery(program):
    """A live webhook endpoint of `program` and one failed delivery of a test message. The URL is a
    public address, so nothing resolves a name and nothing is sent."""
    from django.utils import timezone

    from refapp.models import Actor
    from webhooks.models import WebhookDelivery
    from webhooks.outbox import test_message_create
    from webhooks.services import endpoint_create

    now = timezone.now()
    endpoint = endpoint_create(
        program=program,
        livemode=True,
        url="https://93.184.215.14/hook",
        events=["commission.created"],
        description="",
        actor=Actor.system(),
        now=now,
    )
    message = test_message_create(endpoint=endpoint, now=now)
    delivery = WebhookDelivery.objects.create(
        message=message, endpoint=endpoint, attempt=1, status="failed", attempted_at=now
    )
    return endpoint, delivery
