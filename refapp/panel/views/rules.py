"""Panel: commission rules, with a preview of what a draft would have paid last month."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from affiliates.models import PartnerGroup, Program
from commissions import rules as rule_services
from commissions.models import CommissionRule
from commissions.rules import RuleInvalid, RuleNotEditable
from refapp.htmx import render_page
from refapp.models import AuditLog

from .. import selectors
from ..access import actor, can_write, get_program_for_staff, staff_required
from ..forms import RuleForm
from ..preview import RulePreview, rule_preview


def _get_rule_for_program(program: Program, public_id: str) -> CommissionRule:
    return get_object_or_404(
        CommissionRule.objects.select_related("program", "group", "affiliate"),
        program=program,
        livemode=True,  # test rules belong to the API's test mode, not to the panel
        public_id=public_id,
    )


def _rule_errors_to_form(form: RuleForm, errors: dict[str, list[str]]) -> None:
    for key, field_messages in errors.items():
        field = RuleForm.ERROR_FIELDS.get(key)
        for message in field_messages:
            form.add_error(field if field in form.fields else None, message)


@require_GET
@staff_required
def rule_list(request: HttpRequest, slug: str) -> HttpResponse:
    program = get_program_for_staff(request, slug)
    rules = selectors.rules_for_program(program)
    context = {
        "program": program,
        "active_rules": [r for r in rules if r.is_active],
        "inactive_rules": [r for r in rules if not r.is_active],
        "can_write": can_write(request),
    }
    return render_page(request, "panel/rules.html", context)


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
        initial = {"scope": "affiliate", "affiliate": scoped.code}
    elif group := PartnerGroup.objects.filter(
        program=program, public_id=request.GET.get("group", "")
    ).first():
        initial = {"scope": "group", "group": group}
    form = RuleForm(request.POST or None, program=program, initial=initial)
    context: dict[str, Any] = {"program": program, "form": form, "rule": None}
    if request.method == "POST" and "preview" in request.POST:
        context["preview"] = _preview_draft(program, form) if form.is_valid() else None
        return render_page(request, "panel/rule_form.html", context)
    if request.method == "POST" and form.is_valid():
        try:
            rule = rule_services.rule_create(program=program, actor=actor(request), **form.rule_kwargs())
        except RuleInvalid as exc:
            _rule_errors_to_form(form, exc.errors)
        else:
            messages.success(request, f"Rule created: {rule.describe()}.")
            return _rule_saved_redirect(program, rule)
    return render_page(request, "panel/rule_form.html", context)


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
        return render_page(request, "panel/rule_form.html", context)
    if request.method == "POST" and form.is_valid():
        try:
            successor = rule_services.rule_replace(rule=rule, actor=actor(request), **form.rule_kwargs())
        except RuleInvalid as exc:
            _rule_errors_to_form(form, exc.errors)
        except RuleNotEditable as exc:
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
    return render_page(request, "panel/rule_form.html", context)


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
    rule_services.rule_deactivate(rule=rule, actor=actor(request))
    messages.success(request, f"Rule {rule.public_id} deactivated; its past commissions are unchanged.")
    return redirect("panel:rule-list", program.slug)
