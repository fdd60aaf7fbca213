"""Panel: the affiliates list and export, inviting an affiliate, an affiliate's page and status."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from affiliates import services as affiliate_services
from affiliates.models import Affiliate, Program
from affiliates.rewards import promotion_code_of
from commissions import stats
from commissions.models import Commission, FraudFlag
from payouts.models import CustomerCredit
from refapp.htmx import render_page
from tracking.csv_export import csv_response, export_filename

from .. import charts, selectors
from ..access import actor, can_write, get_program_for_staff, staff_required
from ..forms import AffiliateFilterForm, AffiliateGroupForm, AffiliateInviteForm, AffiliateStatusForm
from ..history import readable_rows


def _get_affiliate_for_program(program: Program, public_id: str) -> Affiliate:
    return get_object_or_404(
        Affiliate.objects.select_related("program", "group"),
        program=program,
        livemode=True,  # test affiliates belong to the API's test mode, not to the panel
        public_id=public_id,
    )


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


# The columns a narrow screen shows on each row's first line (the others fold below them).
AFFILIATE_KEY_COLUMNS = {"Affiliate", "Status", "Earned"}


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
        headers.append(
            {"label": label, "sort": target, "order": order, "key": label in AFFILIATE_KEY_COLUMNS}
        )
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
        "can_write": can_write(request),
        "filtered": bool(filters["q"] or filters["status"] or filters["kind"]),
    }
    return render_page(request, "panel/affiliates.html", context, partial="table")


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
                actor=actor(request),
            )
        except affiliate_services.Conflict as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(
                request,
                f"{affiliate.name} joined as {affiliate.code}; a sign-in link is on its way to {affiliate.email}.",
            )
            return redirect("panel:affiliate-detail", program.slug, affiliate.public_id)
    return render_page(request, "panel/affiliate_invite.html", {"program": program, "form": form})


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
    previous = stats.affiliate_series(affiliate, stats.previous_period(period))
    chart_list = charts.with_ids(charts.daily_charts(program.currency, series, previous), "affiliate-chart")
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
        "promotion_code": promotion_code_of(affiliate),
        "period": period,
        "preset": preset,
        "presets": stats.PRESETS,
        "range_errors": range_errors,
        "summary": summary,
        "rejected_cents": rejected,
        "charts": chart_list,
        "rate_help": stats.CONVERSION_RATE_HELP,
        "balances": stats.affiliate_balances(affiliate),
        "group_form": group_form or AffiliateGroupForm(program=program, initial={"group": affiliate.group}),
        "status_actions": actions,
        # Rejecting and suspending come last on the page, behind a disclosure (the danger zone).
        "danger_actions": [a for a in actions if a["needs_reason"]],
        "rules": selectors.rules_for_affiliate(affiliate),
        "recent_commissions": Commission.objects.filter(affiliate=affiliate)
        .select_related("event")
        .order_by("-created_at", "-pk")[:10],
        "open_flags": affiliate.fraud_flags.filter(status=FraudFlag.Status.OPEN).count(),
        "audit": readable_rows(selectors.affiliate_audit_trail(affiliate), program),
        "can_write": can_write(request),
        # A customer referrer's account credits and debits (refer-a-friend), newest first.
        "customer_credits": (
            CustomerCredit.objects.filter(affiliate=affiliate)
            .select_related("commission")
            .order_by("-created_at", "-pk")[:50]
            if affiliate.is_customer
            else []
        ),
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
            affiliate_services.affiliate_set_group(affiliate=affiliate, group=group, actor=actor(request))
            messages.success(request, f"{affiliate.name} is now in {group.name if group else 'no group'}.")
            return redirect("panel:affiliate-detail", program.slug, affiliate.public_id)
    context = _affiliate_detail_context(request, program, affiliate, group_form=group_form)
    return render_page(request, "panel/affiliate_detail.html", context, partial="stats")


@require_POST
@staff_required
def affiliate_status(request: HttpRequest, slug: str, public_id: str) -> HttpResponse:
    program = get_program_for_staff(request, slug, write=True)
    affiliate = _get_affiliate_for_program(program, public_id)
    form = AffiliateStatusForm(request.POST)
    if not form.is_valid():
        context = _affiliate_detail_context(request, program, affiliate, status_form=form)
        return render_page(request, "panel/affiliate_detail.html", context)
    status = form.cleaned_data["status"]
    try:
        affiliate_services.affiliate_set_status(
            affiliate=affiliate,
            status=status,
            reason=form.cleaned_data["reason"].strip(),
            actor=actor(request),
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
