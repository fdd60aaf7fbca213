"""Automation API for affiliates: create, list and look up, read, and change
status, group, code or PayPal payout email.

Live and test are separate worlds: a key sees and changes only affiliates of its own mode, and an
affiliate of the other mode answers 404, as if it did not exist. Thin: the JSON and its schemas
live in affiliates/api.py.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse

from refapp.api import ApiError, Fields, api_view, error_response, invalid, paginate, read_json_object

from ..api import affiliate_json, affiliate_named, friend_reward_json, referrer_json
from ..auth import authenticate
from ..errors import Invalid
from ..models import CODE_RE, Affiliate, FriendReward, PartnerGroup, validate_paypal_email
from ..promotions import friend_reward_remove, friend_reward_set
from ..referrers import CustomerReferralsOff, referrer_enrol
from ..services import UNCHANGED, Conflict, InvalidTransition, affiliate_create, affiliate_update


def _group(ctx, public_id: str | None) -> PartnerGroup | None:
    if not public_id:
        return None
    group = PartnerGroup.objects.filter(public_id=public_id).first()
    if group is None:
        raise invalid("Unknown group.", {"group": ["No such partner group."]})
    if group.program_id != ctx.program.pk:
        raise ApiError(403, "wrong_program", "This group belongs to another program.")
    return group


@api_view
def affiliates(request: HttpRequest) -> HttpResponse:
    ctx = authenticate(request)
    if request.method == "GET":
        qs = Affiliate.objects.filter(program=ctx.program, livemode=ctx.livemode).select_related(
            "program", "group", "promotion_code"
        )
        status = request.GET.get("status")
        if status:
            if status not in Affiliate.Status.values:
                raise invalid(
                    "Unknown status.", {"status": [f"Use one of {', '.join(Affiliate.Status.values)}."]}
                )
            qs = qs.filter(status=status)
        q = request.GET.get("q", "").strip()
        if q:
            qs = qs.filter(Q(email__icontains=q) | Q(name__icontains=q) | Q(code_key__icontains=q.lower()))
        # Exact look-ups, any case: codes match by their lowercased key, emails are stored lowercased.
        if request.GET.get("code"):
            qs = qs.filter(code_key=request.GET["code"].lower())
        if request.GET.get("email"):
            qs = qs.filter(email=request.GET["email"].strip().lower())
        return paginate(request, qs, affiliate_json)
    if request.method != "POST":
        response = error_response(405, "method_not_allowed", "Use GET or POST.")
        response["Allow"] = "GET, POST"
        return response
    data = read_json_object(request)
    f = Fields(data)
    email = f.str("email", required=True, max_length=254)
    name = f.str("name", required=True, max_length=200)
    code = f.str("code", max_length=64)
    status = f.str("status", default=Affiliate.Status.ACTIVE, max_length=20)
    group_id = f.str("group", max_length=32)
    if email:
        try:
            validate_email(email)
        except ValidationError:
            f.add("email", "Is not a valid email address.")
    if code and not CODE_RE.match(code):
        f.add("code", "Use 1 to 64 letters, digits, '-' or '_', starting with a letter or digit.")
    if status not in (Affiliate.Status.ACTIVE, Affiliate.Status.PENDING):
        f.add("status", "A new affiliate is 'active' or 'pending'.")
    f.raise_if_any()
    group = _group(ctx, group_id)
    try:
        affiliate = affiliate_create(
            program=ctx.program,
            email=email or "",
            name=name or "",
            code=code,
            status=status or "active",
            group=group,
            actor=ctx.actor,
            livemode=ctx.livemode,
        )
    except Conflict as exc:
        raise ApiError(409, f"{exc.field}_taken", exc.message, {exc.field: [exc.message]}) from None
    return JsonResponse(affiliate_json(affiliate), status=201)


_CHANGEABLE = {"status", "reason", "group", "code", "paypal_email", "promotion_code"}


@api_view
def affiliate_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    """`public_id` is the aff_ id or, as a convenience, the code (codes never start with aff_
    in practice, and the id wins when both could match)."""
    ctx = authenticate(request)
    affiliate = Affiliate.objects.select_related("program", "group").filter(public_id=public_id).first()
    if affiliate is None:
        affiliate = affiliate_named(program=ctx.program, livemode=ctx.livemode, value=public_id)
    if affiliate is None:
        raise ApiError(404, "not_found", "No such affiliate.")
    if affiliate.program_id != ctx.program.pk:
        raise ApiError(403, "wrong_program", "This affiliate belongs to another program.")
    if affiliate.livemode != ctx.livemode:
        raise ApiError(404, "not_found", "No such affiliate.")
    if request.method == "GET":
        return JsonResponse(affiliate_json(affiliate))
    if request.method != "PATCH":
        response = error_response(405, "method_not_allowed", "Use GET or PATCH.")
        response["Allow"] = "GET, PATCH"
        return response
    data = read_json_object(request)
    f = Fields(data)
    status = f.str("status", max_length=20)
    reason = f.str("reason", max_length=500, default="") or ""
    code = f.str("code", max_length=64)
    promotion_code = f.str("promotion_code", max_length=64)
    if "promotion_code" in data and not promotion_code and "promotion_code" not in f.errors:
        f.add("promotion_code", "An affiliate always has a promotion code.")
    if status and status not in (
        Affiliate.Status.ACTIVE,
        Affiliate.Status.SUSPENDED,
        Affiliate.Status.REJECTED,
    ):
        f.add("status", "Use 'active', 'suspended' or 'rejected'.")
    if "code" in data and not code and "code" not in f.errors:
        f.add("code", "An affiliate always has a code.")
    if code and not CODE_RE.match(code):
        f.add("code", "Use 1 to 64 letters, digits, '-' or '_', starting with a letter or digit.")
    paypal_email = UNCHANGED
    if "paypal_email" in data:
        paypal_email = f.str("paypal_email", max_length=254)  # None or "" clears it
        if paypal_email:
            try:
                validate_paypal_email(paypal_email.strip().lower())
            except ValidationError as exc:
                for message in exc.messages:
                    f.add("paypal_email", message)
    group_value = data.get("group")
    if group_value is not None and not isinstance(group_value, str):
        f.add("group", "Must be a group id or null.")
    for name in sorted(set(data) - _CHANGEABLE):
        f.add(name, "Cannot be changed through this endpoint.")
    f.raise_if_any()
    group = _group(ctx, group_value) if "group" in data else UNCHANGED
    try:
        affiliate = affiliate_update(
            affiliate=affiliate,
            actor=ctx.actor,
            status=status,
            reason=reason,
            group=group,
            code=code,
            paypal_email=paypal_email,
            promotion_code=promotion_code,
        )
    except Invalid as exc:
        raise invalid("The change is not valid.", exc.errors) from None
    except Conflict as exc:
        raise ApiError(409, f"{exc.field}_taken", exc.message, {exc.field: [exc.message]}) from None
    except InvalidTransition as exc:
        raise ApiError(409, "invalid_transition", str(exc), {"status": [str(exc)]}) from None
    affiliate = Affiliate.objects.select_related("program", "group").get(pk=affiliate.pk)
    return JsonResponse(affiliate_json(affiliate))


@api_view
def referrers(request: HttpRequest) -> HttpResponse:
    """Enrol a customer as a referrer (refer-a-friend): 201 the first time, 200 with the same
    referrer for every repeat of the same customer_id."""
    ctx = authenticate(request)
    if request.method != "POST":
        response = error_response(405, "method_not_allowed", "Use POST.")
        response["Allow"] = "POST"
        return response
    data = read_json_object(request)
    f = Fields(data)
    email = f.str("email", required=True, max_length=254)
    customer_id = f.str("customer_id", required=True, max_length=255)
    name = f.str("name", max_length=200, default="") or ""
    if email:
        try:
            validate_email(email)
        except ValidationError:
            f.add("email", "Is not a valid email address.")
    if customer_id is not None and not customer_id.strip():
        f.add("customer_id", "Must not be blank.")
    f.raise_if_any()
    try:
        referrer, created = referrer_enrol(
            program=ctx.program,
            livemode=ctx.livemode,
            email=email or "",
            customer_id=customer_id or "",
            name=name.strip(),
            actor=ctx.actor,
        )
    except CustomerReferralsOff:
        raise ApiError(
            409,
            "customer_referrals_off",
            "This program does not enrol customers as referrers; turn it on in the program's settings.",
        ) from None
    except Conflict as exc:
        raise ApiError(409, f"{exc.field}_taken", exc.message, {exc.field: [exc.message]}) from None
    referrer = Affiliate.objects.select_related("program", "group").get(pk=referrer.pk)
    return JsonResponse(referrer_json(referrer), status=201 if created else 200)


# --- friend rewards ------------------------------------------------------------------------------


def _live_only(ctx) -> None:
    # A reward is the program's setting for both modes, like its website or currency.
    if not ctx.livemode:
        raise ApiError(
            403, "live_key_required", "Friend rewards are program settings: change them with a live key."
        )


@api_view
def friend_rewards(request: HttpRequest) -> HttpResponse:
    ctx = authenticate(request)
    if request.method == "GET":
        qs = FriendReward.objects.filter(program=ctx.program).select_related("group")
        return paginate(request, qs, friend_reward_json)
    if request.method != "POST":
        response = error_response(405, "method_not_allowed", "Use GET or POST.")
        response["Allow"] = "GET, POST"
        return response
    _live_only(ctx)
    data = read_json_object(request)
    f = Fields(data)
    kind = f.str("type", required=True, max_length=10)
    percent_bp = f.int("percent_bp")
    amount_cents = f.int("amount_cents")
    currency = f.str("currency", max_length=3, default="") or ""
    duration = f.str("duration", max_length=10, default=FriendReward.Duration.ONCE) or ""
    duration_months = f.int("duration_months")
    stripe_coupon = f.str("stripe_coupon", max_length=200, default="") or ""
    group_id = f.str("group", max_length=32)
    f.raise_if_any()
    group = _group(ctx, group_id)
    existed = FriendReward.objects.filter(program=ctx.program, group=group).exists()
    try:
        reward = friend_reward_set(
            program=ctx.program,
            group=group,
            actor=ctx.actor,
            kind=kind or "",
            percent_bp=percent_bp,
            amount_cents=amount_cents,
            currency=currency,
            duration=duration,
            duration_months=duration_months,
            stripe_coupon_id=stripe_coupon,
        )
    except Invalid as exc:
        errors = {
            ("type" if k == "kind" else "stripe_coupon" if k == "stripe_coupon_id" else k): v
            for k, v in exc.errors.items()
        }
        raise invalid("The friend reward is not valid.", errors) from None
    except Conflict as exc:
        raise ApiError(409, "conflict", exc.message) from None
    return JsonResponse(friend_reward_json(reward), status=200 if existed else 201)


@api_view
def friend_reward_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    ctx = authenticate(request)
    reward = FriendReward.objects.select_related("group").filter(public_id=public_id).first()
    if reward is None:
        raise ApiError(404, "not_found", "No such friend reward.")
    if reward.program_id != ctx.program.pk:
        raise ApiError(403, "wrong_program", "This friend reward belongs to another program.")
    if request.method == "GET":
        return JsonResponse(friend_reward_json(reward))
    if request.method != "DELETE":
        response = error_response(405, "method_not_allowed", "Use GET or DELETE.")
        response["Allow"] = "GET, DELETE"
        return response
    _live_only(ctx)
    reward = friend_reward_remove(reward=reward, actor=ctx.actor)
    return JsonResponse(friend_reward_json(reward))
