"""Panel: the friend reward of a program and of a group, and an affiliate's promotion code."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_http_methods

from affiliates.errors import Conflict, Invalid
from affiliates.models import Affiliate, FriendReward, PartnerGroup, PromotionCode
from affiliates.promotions import friend_reward_remove, friend_reward_set, promotion_code_set
from affiliates.rewards import program_reward, promotion_code_of, reward_for
from refapp.htmx import render_page
from refapp.stripe_api import stripe_enabled

from ..access import actor, get_program_for_staff, staff_required
from ..forms import FriendRewardForm, PromotionCodeForm


@require_http_methods(["GET", "POST"])
@staff_required
def friend_reward(request: HttpRequest, slug: str, public_id: str | None = None) -> HttpResponse:
    """The program's reward (program settings: admins), or the override of the group `public_id`
    (as groups: writers)."""
    group_id = public_id
    program = get_program_for_staff(
        request, slug, admin=request.method == "POST" and group_id is None, write=request.method == "POST"
    )
    group = get_object_or_404(PartnerGroup, program=program, public_id=group_id) if group_id else None
    reward = FriendReward.objects.filter(program=program, group=group).first()
    form = FriendRewardForm(
        request.POST or None, program=program, initial=FriendRewardForm.initial_for(reward)
    )
    if request.method == "POST" and "remove" in request.POST:
        if reward is not None:
            friend_reward_remove(reward=reward, actor=actor(request))
            messages.success(request, "The friend reward is no longer offered.")
        return redirect(request.path)
    if request.method == "POST" and form.is_valid():
        fields = form.reward_fields()
        if not form.errors:
            try:
                friend_reward_set(program=program, group=group, actor=actor(request), **fields)
            except Invalid as exc:
                form.add_service_errors(exc.errors)
            except Conflict as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, "Friend reward saved.")
                return redirect(request.path)
    codes = PromotionCode.objects.filter(program=program)
    context = {
        "program": program,
        "group": group,
        "reward": reward,
        "fallback": program_reward(program) if group is not None else None,
        "form": form,
        "stripe": stripe_enabled(),
        "codes_active": codes.filter(stripe_active=True).count(),
        "codes_failed": codes.exclude(stripe_error="").select_related("affiliate")[:20],
    }
    return render_page(request, "panel/friend_reward.html", context)


@require_http_methods(["GET", "POST"])
@staff_required
def promotion_code(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=request.method == "POST")
    affiliate = get_object_or_404(
        Affiliate.objects.select_related("program", "group"),
        program=program,
        livemode=True,
        public_id=public_id,
    )
    current = promotion_code_of(affiliate)
    form = PromotionCodeForm(request.POST or None, initial={"promotion_code": current})
    if request.method == "POST" and form.is_valid():
        try:
            promotion_code_set(
                affiliate=affiliate, code=form.cleaned_data["promotion_code"], actor=actor(request)
            )
        except (Invalid, Conflict) as exc:
            for message in (
                exc.errors.get("promotion_code", []) if isinstance(exc, Invalid) else [exc.message]
            ):
                form.add_error("promotion_code", message)
        else:
            messages.success(
                request, f"{affiliate.name}'s promotion code is now {form.cleaned_data['promotion_code']}."
            )
            return redirect("panel:affiliate-detail", program.slug, affiliate.public_id)
    context = {
        "program": program,
        "affiliate": affiliate,
        "form": form,
        "current": current,
        "row": PromotionCode.objects.filter(affiliate=affiliate).first(),
        "reward": reward_for(affiliate),
        "stripe": stripe_enabled(),
    }
    return render_page(request, "panel/promotion_code.html", context)
