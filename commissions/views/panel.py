"""Panel pages: affiliates, partner groups, commission rules, commissions and the fraud queue.

Views stay thin: access helpers that 404, a form that validates, a service that writes, a redirect.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from affiliates import services as affiliate_services
from affiliates.access import WRITE_ROLES, get_program_for_staff, staff_required
from affiliates.forms_panel import (
    AffiliateFilterForm,
    AffiliateGroupForm,
    AffiliateInviteForm,
    AffiliateStatusForm,
    GroupForm,
)
from affiliates.models import Affiliate, PartnerGroup, Program
from refapp.models import Actor, AuditLog
from refapp.money import to_decimal
from tracking.csv_export import csv_response, export_filename

from .. import panel_services, selectors, stats
from .. import rules as rule_services
from ..calculation import explain
from ..forms import CommissionBulkForm, CommissionFilterForm, FraudResolveForm, RuleForm
from ..models import Commission, CommissionRule, FraudFlag
from ..preview import RulePreview, rule_preview
from ..rules import RuleInvalid
from ..services import fraud_flag_resolve

# --- helpers -----------------------------------------------------------------------------------


def _render(request: HttpRequest, template: str, partial: str, context: dict[str, Any]) -> HttpResponse:
    """The whole page, or only its `partial` when htmx swaps it in (but not on a history restore)."""
    htmx = getattr(request, "htmx", None)
    name = f"{template}#{partial}" if htmx and not htmx.history_restore_request else template
    response = render(request, name, context)
    # The same URL answers a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


def _can_write(request: HttpRequest) -> bool:
    return getattr(request, "program_role", None) in WRITE_ROLES


def _actor(request: HttpRequest) -> Actor:
    return Actor.for_user(request.user)


def _get_affiliate_for_program(program: Program, public_id: str) -> Affiliate:
    return get_object_or_404(
        Affiliate.objects.select_related("program", "group"), program=program, public_id=public_id
    )


def _get_group_for_program(program: Program, public_id: str) -> PartnerGroup:
    return get_object_or_404(PartnerGroup, program=program, public_id=public_id)


def _get_rule_for_program(program: Program, public_id: str) -> CommissionRule:
    return get_object_or_404(
        CommissionRule.objects.select_related("program", "group", "affiliate"),
        program=program,
        public_id=public_id,
    )


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


def _rule_errors_to_form(form: RuleForm, errors: dict[str, list[str]]) -> None:
    for key, field_messages in errors.items():
        field = RuleForm.ERROR_FIELDS.get(key)
        for message in field_messages:
            form.add_error(field if field in form.fields else None, message)


# --- affiliates --------------------------------------------------------------------------------

# Columns of the affiliates table: (sort key or None, heading, direction of the first click).
AFFILIATE_COLUMNS = [
    ("name", "Affiliate", ""),
    (None, "Code", ""),
    (None, "Status", ""),
    (None, "Group", ""),
    ("clicks", "Clicks", "-"),
    ("conversions", "Conversions", "-"),
    ("earnings", "Earned", "-"),
    ("created", "Joined", "-"),
]


def _table_headers(current: str) -> list[dict[str, Any]]:
    headers = []
    for key, label, first in AFFILIATE_COLUMNS:
        active = key is not None and current.lstrip("-") == key
        descending = current.startswith("-")
        if not key:
            target = ""
        elif active:
            target = key if descending else f"-{key}"
        else:
            target = f"{first}{key}"
        order = ("descending" if descending else "ascending") if active else ""
        headers.append({"label": label, "sort": target, "order": order})
    return headers


@require_GET
@staff_required
def affiliate_list(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    form = AffiliateFilterForm(request.GET)
    filters = form.filters()
    sort = filters["sort"] or selectors.DEFAULT_AFFILIATE_SORT
    page = Paginator(selectors.AffiliatePages(program, **filters), 50).get_page(request.GET.get("page"))
    page.object_list = selectors.with_figures(list(page.object_list))
    context = {
        "program": program,
        "form": form,
        "page": page,
        "headers": _table_headers(sort),
        "can_write": _can_write(request),
        "filtered": bool(filters["q"] or filters["status"]),
    }
    return _render(request, "panel/affiliates.html", "table", context)


@require_GET
@staff_required
def affiliate_export(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    program = get_program_for_staff(request, slug)
    affiliates = selectors.affiliates_for_program(program, **AffiliateFilterForm(request.GET).filters())
    return csv_response(
        filename=export_filename(program.slug, "affiliates", timezone.now().date()),
        header=selectors.AFFILIATE_CSV_HEADER,
        rows=selectors.affiliate_csv_rows(program, affiliates),
    )


@require_http_methods(["GET", "POST"])
@staff_required
def affiliate_invite(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    form = AffiliateInviteForm(request.POST or None, program=program)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            affiliate = affiliate_services.affiliate_invite(
                program=program,
                email=data["email"],
                name=data["name"],
                code=data["code"] or None,
                group=data["group"],
                actor=_actor(request),
            )
        except affiliate_services.Conflict as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(
                request,
                f"{affiliate.name} joined as {affiliate.code}; a sign-in link is on its way to {affiliate.email}.",
            )
            return redirect("panel:affiliate-detail", program.slug, affiliate.public_id)
    return render(request, "panel/affiliate_invite.html", {"program": program, "form": form})


# The status buttons offered for each status: (new status, button label, needs a reason).
STATUS_ACTIONS = {
    Affiliate.Status.PENDING: [
        (Affiliate.Status.ACTIVE, "Approve", False),
        (Affiliate.Status.REJECTED, "Reject", True),
    ],
    Affiliate.Status.ACTIVE: [(Affiliate.Status.SUSPENDED, "Suspend", True)],
    Affiliate.Status.SUSPENDED: [(Affiliate.Status.ACTIVE, "Reactivate", False)],
    Affiliate.Status.REJECTED: [(Affiliate.Status.ACTIVE, "Reactivate", False)],
}


def _affiliate_detail_context(
    request: HttpRequest,
    program: Program,
    affiliate: Affiliate,
    *,
    group_form: AffiliateGroupForm | None = None,
    status_form: AffiliateStatusForm | None = None,
) -> dict[str, Any]:
    period, preset, range_errors = stats.parse_range(request.GET, timezone.now().date())
    summary, series = stats.affiliate_overview(affiliate, period)
    rejected = (
        Commission.objects.filter(
            affiliate=affiliate,
            livemode=True,
            status=Commission.Status.REJECTED,
            created_at__gte=period.start_at,
            created_at__lt=period.end_at,
        ).aggregate(total=Sum("amount_cents"))["total"]
        or 0
    )
    chart = {
        "labels": series["labels"],
        "series": [
            {"label": "Clicks", "data": series["clicks"]},
            {"label": "Conversions", "data": series["conversions"]},
            {
                "label": f"Revenue ({program.currency})",
                "data": [float(to_decimal(c, program.currency)) for c in series["revenue_cents"]],
                "axis": "y2",
            },
        ],
    }
    failed_status = status_form.data.get("status") if status_form is not None else None
    actions = [
        {
            "status": status,
            "label": label,
            "needs_reason": needs_reason,
            "form": status_form
            if status == failed_status
            else AffiliateStatusForm(initial={"status": status}),
        }
        for status, label, needs_reason in STATUS_ACTIONS.get(affiliate.status, [])
    ]
    return {
        "program": program,
        "affiliate": affiliate,
        "links": affiliate.links(),
        "period": period,
        "preset": preset,
        "presets": stats.PRESETS,
        "range_errors": range_errors,
        "summary": summary,
        "rejected_cents": rejected,
        "chart": chart,
        "balances": stats.affiliate_balances(affiliate),
        "group_form": group_form or AffiliateGroupForm(program=program, initial={"group": affiliate.group}),
        "status_actions": actions,
        "rules": selectors.rules_for_affiliate(affiliate),
        "recent_commissions": Commission.objects.filter(affiliate=affiliate)
        .select_related("event")
        .order_by("-created_at", "-pk")[:10],
        "open_flags": affiliate.fraud_flags.filter(status=FraudFlag.Status.OPEN).count(),
        "audit": selectors.affiliate_audit_trail(affiliate),
        "can_write": _can_write(request),
    }


@require_http_methods(["GET", "POST"])
@staff_required
def affiliate_detail(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    """The affiliate's page; a POST here changes their partner group."""
    program = get_program_for_staff(request, slug, write=request.method == "POST")
    affiliate = _get_affiliate_for_program(program, public_id)
    group_form = None
    if request.method == "POST":
        group_form = AffiliateGroupForm(request.POST, program=program)
        if group_form.is_valid():
            group = group_form.cleaned_data["group"]
            affiliate_services.affiliate_set_group(affiliate=affiliate, group=group, actor=_actor(request))
            messages.success(request, f"{affiliate.name} is now in {group.name if group else 'no group'}.")
            return redirect("panel:affiliate-detail", program.slug, affiliate.public_id)
    context = _affiliate_detail_context(request, program, affiliate, group_form=group_form)
    return _render(request, "panel/affiliate_detail.html", "stats", context)


@require_POST
@staff_required
def affiliate_status(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    affiliate = _get_affiliate_for_program(program, public_id)
    form = AffiliateStatusForm(request.POST)
    if not form.is_valid():
        context = _affiliate_detail_context(request, program, affiliate, status_form=form)
        return render(request, "panel/affiliate_detail.html", context)
    status = form.cleaned_data["status"]
    try:
        affiliate_services.affiliate_set_status(
            affiliate=affiliate,
            status=status,
            reason=form.cleaned_data["reason"].strip(),
            actor=_actor(request),
        )
    except affiliate_services.InvalidTransition:
        messages.error(
            request,
            f"{affiliate.name} is {affiliate.get_status_display().lower()} and cannot become "
            f"{Affiliate.Status(status).label.lower()}.",
        )
    else:
        messages.success(request, f"{affiliate.name} is now {Affiliate.Status(status).label.lower()}.")
    return redirect("panel:affiliate-detail", program.slug, affiliate.public_id)


# --- partner groups ----------------------------------------------------------------------------


@require_GET
@staff_required
def group_list(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    context = {
        "program": program,
        "groups": selectors.groups_with_counts(program),
        "can_write": _can_write(request),
    }
    return render(request, "panel/groups.html", context)


@require_http_methods(["GET", "POST"])
@staff_required
def group_create(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    form = GroupForm(request.POST or None, program=program)
    if request.method == "POST" and form.is_valid():
        try:
            group = panel_services.group_create(
                program=program,
                name=form.cleaned_data["name"],
                is_active=form.cleaned_data["is_active"],
                actor=_actor(request),
            )
        except affiliate_services.Conflict as exc:
            form.add_error("name", exc.message)
        else:
            messages.success(request, f"Group {group.name} created.")
            return redirect("panel:group-list", program.slug)
    return render(request, "panel/group_form.html", {"program": program, "form": form, "group": None})


@require_http_methods(["GET", "POST"])
@staff_required
def group_edit(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    group = _get_group_for_program(program, public_id)
    form = GroupForm(
        request.POST or None,
        program=program,
        group=group,
        initial={"name": group.name, "is_active": group.is_active},
    )
    if request.method == "POST" and form.is_valid():
        try:
            group = panel_services.group_update(
                group=group,
                name=form.cleaned_data["name"],
                is_active=form.cleaned_data["is_active"],
                actor=_actor(request),
            )
        except affiliate_services.Conflict as exc:
            form.add_error("name", exc.message)
        else:
            messages.success(request, f"Group {group.name} saved.")
            return redirect("panel:group-list", program.slug)
    context = {
        "program": program,
        "form": form,
        "group": group,
        "members": group.affiliates.order_by("name")[:50],
        "member_count": group.affiliates.count(),
        "rules": group.rules.select_related("program").order_by("-is_active", "-pk"),
    }
    return render(request, "panel/group_form.html", context)


# --- commission rules --------------------------------------------------------------------------


@require_GET
@staff_required
def rule_list(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    rules = selectors.rules_for_program(program)
    context = {
        "program": program,
        "active_rules": [r for r in rules if r.is_active],
        "inactive_rules": [r for r in rules if not r.is_active],
        "can_write": _can_write(request),
    }
    return render(request, "panel/rules.html", context)


def _rule_saved_redirect(program: Program, rule: CommissionRule) -> HttpResponse:
    if rule.affiliate_id:
        return redirect("panel:affiliate-detail", program.slug, rule.affiliate.public_id)
    return redirect("panel:rule-list", program.slug)


def _preview_draft(program: Program, form: RuleForm) -> RulePreview | None:
    """The preview of a valid draft (nothing saved), or None with the mistakes put on the form."""
    kwargs = form.rule_kwargs()
    errors = rule_services.validate_rule(
        event_name=kwargs["event_name"],
        type=kwargs["type"],
        rate_bp=kwargs["rate_bp"],
        amount_cents=kwargs["amount_cents"],
        tiers=kwargs["tiers"],
        currency=kwargs.pop("currency"),
        program_currency=program.currency,
    )
    if errors:
        _rule_errors_to_form(form, errors)
        return None
    draft = CommissionRule(program=program, **kwargs)
    return rule_preview(program=program, rule=draft, now=timezone.now())


@require_http_methods(["GET", "POST"])
@staff_required
def rule_create(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    initial: dict[str, Any] = {}
    # Links from an affiliate's or a group's page open the form already scoped to them.
    if scoped := selectors.affiliate_by_reference(program, request.GET.get("affiliate", "")):
        initial.update(scope="affiliate", affiliate=scoped.code)
    elif group := PartnerGroup.objects.filter(
        program=program, public_id=request.GET.get("group", "")
    ).first():
        initial.update(scope="group", group=group)
    form = RuleForm(request.POST or None, program=program, initial=initial)
    context: dict[str, Any] = {"program": program, "form": form, "rule": None}
    if request.method == "POST" and "preview" in request.POST:
        context["preview"] = _preview_draft(program, form) if form.is_valid() else None
        return render(request, "panel/rule_form.html", context)
    if request.method == "POST" and form.is_valid():
        try:
            rule = rule_services.rule_create(program=program, actor=_actor(request), **form.rule_kwargs())
        except RuleInvalid as exc:
            _rule_errors_to_form(form, exc.errors)
        else:
            messages.success(request, f"Rule created: {rule.describe()}.")
            return _rule_saved_redirect(program, rule)
    return render(request, "panel/rule_form.html", context)


@require_http_methods(["GET", "POST"])
@staff_required
def rule_edit(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    rule = _get_rule_for_program(program, public_id)
    form = RuleForm(request.POST or None, program=program, initial=RuleForm.initial_for(rule))
    context: dict[str, Any] = {
        "program": program,
        "form": form,
        "rule": rule,
        "commission_count": rule.commissions.count(),
        "replaced_by": _successor_of(rule),
    }
    if request.method == "POST" and "preview" in request.POST and rule.is_active:
        context["preview"] = _preview_draft(program, form) if form.is_valid() else None
        return render(request, "panel/rule_form.html", context)
    if request.method == "POST" and form.is_valid():
        try:
            successor = panel_services.rule_replace(rule=rule, actor=_actor(request), **form.rule_kwargs())
        except RuleInvalid as exc:
            _rule_errors_to_form(form, exc.errors)
        except panel_services.RuleNotEditable as exc:
            form.add_error(None, str(exc))
        else:
            if successor.pk == rule.pk:
                messages.info(request, "Nothing changed.")
            else:
                messages.success(
                    request,
                    f"Rule {rule.public_id} retired and replaced by {successor.public_id}: {successor.describe()}.",
                )
            return _rule_saved_redirect(program, successor)
    return render(request, "panel/rule_form.html", context)


def _successor_of(rule: CommissionRule) -> CommissionRule | None:
    """The rule that replaced this one through an edit, read from the audit log."""
    row = (
        AuditLog.objects.filter(
            object_type="commissions.commissionrule", object_id=rule.public_id, action="rule.replaced"
        )
        .order_by("-id")
        .values_list("data", flat=True)
        .first()
    )
    if not row:
        return None
    return CommissionRule.objects.filter(program_id=rule.program_id, public_id=row.get("replaced_by")).first()


@require_POST
@staff_required
def rule_deactivate(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    rule = _get_rule_for_program(program, public_id)
    rule_services.rule_deactivate(rule=rule, actor=_actor(request))
    messages.success(request, f"Rule {rule.public_id} deactivated; its past commissions are unchanged.")
    return redirect("panel:rule-list", program.slug)


# --- commissions -------------------------------------------------------------------------------


@require_GET
@staff_required
def commission_list(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    form = CommissionFilterForm(request.GET)
    filters = form.filters()
    page = Paginator(selectors.commissions_for_program(program, **filters), 50).get_page(
        request.GET.get("page")
    )
    context = {
        "program": program,
        "form": form,
        "page": page,
        "livemode": filters["livemode"],
        "can_write": _can_write(request),
    }
    return _render(request, "panel/commissions.html", "table", context)


@require_POST
@staff_required
def commission_bulk(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    next_url = _safe_next(request, reverse("panel:commission-list", args=[program.slug]))
    form = CommissionBulkForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(next_url)
    result = panel_services.commissions_bulk_set_status(
        program=program,
        public_ids=form.cleaned_data["ids"],
        status=form.status,
        reason=form.cleaned_data["reason"].strip() or "approved by hand",
        actor=_actor(request),
        now=timezone.now(),
    )
    verb = "approved" if form.status == Commission.Status.APPROVED else "rejected"
    text = f"{result.changed} commission{'' if result.changed == 1 else 's'} {verb}"
    if result.skipped:
        text += f"; {result.skipped} skipped (paid, already {verb}, rejected, or not in this program)"
    messages.success(request, text + ".")
    return redirect(next_url)


@require_GET
@staff_required
def commission_export(request: HttpRequest, slug: str) -> StreamingHttpResponse:
    program = get_program_for_staff(request, slug)
    commissions = selectors.commissions_for_program(program, **CommissionFilterForm(request.GET).filters())
    return csv_response(
        filename=export_filename(program.slug, "commissions", timezone.now().date()),
        header=selectors.COMMISSION_CSV_HEADER,
        rows=selectors.commission_csv_rows(commissions),
    )


@require_GET
@staff_required
def commission_detail(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    commission = get_object_or_404(
        Commission.objects.select_related(
            "affiliate",
            "event",
            "event__click",
            "event__referral",
            "event__referral__click",
            "rule",
            "rule__program",
            "rule__group",
            "rule__affiliate",
            "reverses",
        ),
        program=program,
        public_id=public_id,
    )
    inputs = dict(commission.inputs or {})
    skipped = inputs.pop("skipped", [])
    context = {
        "program": program,
        "commission": commission,
        "event": commission.event,
        "explanation": explain(commission),
        "arithmetic": selectors.commission_arithmetic(commission),
        "inputs": sorted(inputs.items()),
        "skipped": skipped,
        "reversals": commission.reversals.order_by("created_at", "pk"),
        "siblings": Commission.objects.filter(event=commission.event, kind=Commission.Kind.COMMISSION)
        .exclude(pk=commission.pk)
        .select_related("rule", "rule__program"),
        "flags": commission.event.fraud_flags.order_by("-created_at"),
        "history": selectors.commission_history(commission),
        "can_write": _can_write(request),
        "reviewable": commission.status in panel_services.REVIEWABLE,
    }
    return render(request, "panel/commission_detail.html", context)


# --- fraud -------------------------------------------------------------------------------------


@require_GET
@staff_required
def fraud_queue(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    context = {
        "program": program,
        "flags": selectors.open_fraud_flags(program),
        "affiliates": selectors.flagged_affiliates(program),
        "resolved": selectors.recently_resolved_flags(program),
        "can_write": _can_write(request),
    }
    return render(request, "panel/fraud.html", context)


@require_POST
@staff_required
def fraud_resolve(request: HttpRequest, slug: str, flag_id: int) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    flag = get_object_or_404(FraudFlag, program=program, pk=flag_id)
    form = FraudResolveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose whether to dismiss or confirm the flag.")
    elif flag.status != FraudFlag.Status.OPEN:
        messages.info(request, f"This flag was already resolved: {flag.get_status_display().lower()}.")
    else:
        flag = fraud_flag_resolve(flag=flag, release=form.release, actor=_actor(request), now=timezone.now())
        messages.success(request, f"Flag {flag.get_status_display().lower()}.")
    return redirect("panel:fraud-queue", program.slug)
