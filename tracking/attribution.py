"""Who gets the credit for a conversion (docs/architecture.md, "Domain rules").

In order: (1) a customer already tied to a referral stays with that affiliate; (2) a referral code
on the event; (3) the promotion code used at checkout and the visitor's click inside the program's
cookie window, last click by default, first click as a program option. Inactive affiliates earn
nothing new.

A promotion code is a touch at checkout, the latest one a conversion can have. When a code and a
click name different affiliates, the program's attribution model decides between them as between
two clicks: last click gives the code the credit, first click the earlier click. `detail` records
both candidates and why one won; the commissions keep it as their receipt.

Live and test are separate worlds: a code or a click attributes an event only to an affiliate of
the event's mode (a live affiliate's code in a test event is unattributed, and the other way
round). A customer's referral is already per mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from affiliates.models import Affiliate, Program
from affiliates.rewards import affiliate_by_promotion_code
from refapp.models import audit_announce, audit_entry

from .models import Click, Event, Referral


@dataclass
class Attribution:
    method: str  # one of Event.Attribution
    affiliate: Affiliate | None = None
    referral: Referral | None = None
    click: Click | None = None
    # Why the affiliate earns nothing although the customer is theirs (e.g. "affiliate_suspended").
    blocked_reason: str = ""
    # The receipt of a promotion code's attribution: which candidates there were, which won, why.
    detail: dict | None = None

    @property
    def attributed(self) -> bool:
        return self.affiliate is not None


def attribute(
    *,
    program: Program,
    livemode: bool,
    customer_id: str,
    referral_code: str,
    visitor_id: str,
    occurred_at: datetime,
    received_at: datetime,
    coupon_code: str = "",
) -> Attribution:
    if customer_id:
        referral = (
            Referral.objects.select_related("affiliate")
            .filter(program=program, livemode=livemode, customer_id=customer_id)
            .first()
        )
        if referral is not None:
            blocked = "" if referral.affiliate.is_active else f"affiliate_{referral.affiliate.status}"
            return Attribution(
                Event.Attribution.CUSTOMER, referral.affiliate, referral, blocked_reason=blocked
            )

    if referral_code:
        affiliate = Affiliate.objects.filter(
            program=program,
            code_key=referral_code.lower(),
            livemode=livemode,
            status=Affiliate.Status.ACTIVE,
        ).first()
        if affiliate is not None:
            return Attribution(Event.Attribution.CODE, affiliate)

    by_click = _by_click(program, livemode, visitor_id, occurred_at, received_at) if visitor_id else None
    if coupon_code:
        owner = affiliate_by_promotion_code(program=program, livemode=livemode, code=coupon_code)
        if owner is not None:
            return _code_or_click(program, coupon_code, owner, by_click)
    return by_click or Attribution(Event.Attribution.NONE)


def _code_or_click(
    program: Program, coupon_code: str, owner: Affiliate, by_click: Attribution | None
) -> Attribution:
    """A promotion code and maybe a click: the program's attribution model decides between them."""
    detail: dict = {"promotion_code": coupon_code, "promotion_code_affiliate": owner.public_id}
    if by_click is None:
        detail.update(won="promotion_code", why="the promotion code used at checkout; no click in the window")
        return Attribution(Event.Attribution.COUPON, owner, detail=detail)
    detail["click_affiliate"] = by_click.affiliate.public_id
    if by_click.affiliate.pk == owner.pk:
        # Both name the same affiliate: the click is kept (it carries the visit's campaign and sub id).
        detail.update(won="click", why="the click and the promotion code name the same affiliate")
        by_click.detail = detail
        return by_click
    detail["model"] = program.attribution_model
    if program.attribution_model == Program.Attribution.FIRST_CLICK:
        detail.update(won="click", why="first click: the click came before the code used at checkout")
        by_click.detail = detail
        return by_click
    detail.update(won="promotion_code", why="last click: the code used at checkout is the latest touch")
    return Attribution(Event.Attribution.COUPON, owner, detail=detail)


def _by_click(
    program: Program, livemode: bool, visitor_id: str, occurred_at: datetime, received_at: datetime
) -> Attribution | None:
    if visitor_id:
        window_start = occurred_at - timedelta(days=program.cookie_days)
        # One indexed query on (program, visitor_id, created_at): the click_visitor_idx index.
        clicks = Click.objects.select_related("affiliate").filter(
            program=program,
            visitor_id=visitor_id,
            created_at__gte=window_start,
            created_at__lte=max(occurred_at, received_at),
            affiliate__status=Affiliate.Status.ACTIVE,
            affiliate__livemode=livemode,
        )
        order = (
            "created_at" if program.attribution_model == Program.Attribution.FIRST_CLICK else "-created_at"
        )
        click = clicks.order_by(order, "pk" if order == "created_at" else "-pk").first()
        if click is not None:
            return Attribution(Event.Attribution.CLICK, click.affiliate, click=click)
    return None


def referral_for(
    *,
    program: Program,
    livemode: bool,
    attribution: Attribution,
    customer_id: str,
    visitor_id: str,
    now: datetime,
) -> Referral:
    """The referral an attributed event belongs to, created on the customer's first conversion.

    Must run inside the caller's transaction. Two first events of one new customer may race: the
    unique (program, livemode, customer_id) index lets one create it and the other reuse it.
    """
    if attribution.referral is not None:
        return attribution.referral
    affiliate = attribution.affiliate
    assert affiliate is not None
    if not customer_id and visitor_id:
        existing = Referral.objects.filter(
            program=program,
            livemode=livemode,
            affiliate=affiliate,
            visitor_id=visitor_id,
            customer_id__isnull=True,
        ).first()
        if existing is not None:
            existing.affiliate = affiliate  # the same row, already loaded: no second query
            return existing
    referral = Referral(
        program=program,
        livemode=livemode,
        affiliate=affiliate,
        customer_id=customer_id or None,
        visitor_id=visitor_id,
        click=attribution.click,
        method=attribution.method,
        created_at=now,
    )
    try:
        with transaction.atomic():
            referral.save()
    except IntegrityError:
        return Referral.objects.get(program=program, livemode=livemode, customer_id=customer_id)
    announce_referral(referral)
    return referral


def announce_referral(referral: Referral) -> None:
    """A new referral is told to the listeners of the domain's changes (the webhooks app) like an
    audited change, without an audit row: the conversion that created it writes one already."""
    audit_announce([audit_entry(actor=None, action="referral.created", obj=referral)])
