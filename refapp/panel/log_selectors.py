"""Reads for the panel's events, clicks and activity logs, and the rows of their CSV export."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Q, QuerySet

from affiliates.models import Program
from refapp.models import AuditLog
from tracking.csv_export import decimal_amount
from tracking.models import Click, Event


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def between_days(queryset: QuerySet, field: str, date_from: date | None, date_to: date | None) -> QuerySet:
    """Rows whose `field` falls on the UTC days [date_from, date_to], both inclusive and optional."""
    if date_from:
        queryset = queryset.filter(**{f"{field}__gte": day_start(date_from)})
    if date_to:
        queryset = queryset.filter(**{f"{field}__lt": day_start(date_to + timedelta(days=1))})
    return queryset


def events_for_program(
    program: Program,
    *,
    name: str = "",
    attributed: str = "",
    order_id: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    livemode: bool = True,
) -> QuerySet[Event]:
    events = Event.objects.filter(program=program, livemode=livemode)
    if name:
        events = events.filter(name=name)
    if attributed == "yes":
        events = events.filter(affiliate__isnull=False)
    elif attributed == "no":
        events = events.filter(affiliate__isnull=True)
    if order_id:
        events = events.filter(order_id=order_id)
    events = between_days(events, "occurred_at", date_from, date_to)
    # Newest first rides the (program, -occurred_at) index.
    return events.select_related("affiliate").order_by("-occurred_at", "-pk")


def clicks_for_program(
    program: Program,
    *,
    code: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    source: str = "",
    utm_source: str = "",
) -> QuerySet[Click]:
    clicks = Click.objects.filter(program=program)
    if code:
        clicks = clicks.filter(Q(affiliate__code_key=code.lower()) | Q(affiliate__public_id=code))
    if source:
        clicks = clicks.filter(source=source)
    if utm_source:
        clicks = clicks.filter(utm_source=utm_source)
    clicks = between_days(clicks, "created_at", date_from, date_to)
    return clicks.select_related("affiliate").order_by("-created_at", "-pk")


@dataclass
class UncountedPage:
    """A page of a log that is too big to count: Newer/Older links instead of "page 3 of 9120".

    Counting every click of a program is the full scan docs/architecture.md ("Performance") rules out, so the page
    fetches one row more than it shows to know whether an older page exists.
    """

    object_list: Sequence[Any]
    number: int
    has_more: bool

    def has_next(self) -> bool:
        return self.has_more

    def has_previous(self) -> bool:
        return self.number > 1

    def has_other_pages(self) -> bool:
        return self.has_more or self.number > 1

    def next_page_number(self) -> int:
        return self.number + 1

    def previous_page_number(self) -> int:
        return self.number - 1

    def __iter__(self) -> Iterator[Any]:
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)


def uncounted_page(queryset: QuerySet, number: str | None, per_page: int = 50) -> UncountedPage:
    try:
        page = max(1, int(number or 1))
    except ValueError:
        page = 1
    offset = (page - 1) * per_page
    rows = list(queryset[offset : offset + per_page + 1])
    return UncountedPage(object_list=rows[:per_page], number=page, has_more=len(rows) > per_page)


EVENT_CSV_HEADER = [
    "id",
    "occurred_at",
    "received_at",
    "livemode",
    "name",
    "order_id",
    "customer_id",
    "amount",
    "amount_cents",
    "refunded",
    "refunded_cents",
    "currency",
    "attribution",
    "affiliate_id",
    "affiliate_code",
    "source",
]


def event_csv_rows(events: QuerySet[Event]) -> Iterator[list[Any]]:
    """One list per event, read in chunks with values_list so memory stays flat."""
    columns = events.values_list(
        "public_id",
        "occurred_at",
        "received_at",
        "livemode",
        "name",
        "order_id",
        "customer_id",
        "amount_cents",
        "refunded_cents",
        "currency",
        "attribution",
        "affiliate__public_id",
        "affiliate__code",
        "source",
    )
    for (
        public_id,
        occurred_at,
        received_at,
        livemode,
        name,
        order_id,
        customer_id,
        amount_cents,
        refunded_cents,
        currency,
        attribution,
        affiliate_id,
        affiliate_code,
        source,
    ) in columns.iterator(chunk_size=2000):
        yield [
            public_id,
            occurred_at,
            received_at,
            livemode,
            name,
            order_id,
            customer_id,
            decimal_amount(amount_cents, currency),
            amount_cents,
            decimal_amount(refunded_cents, currency),
            refunded_cents,
            currency,
            attribution,
            affiliate_id,
            affiliate_code,
            source,
        ]


# --- the activity log (every audit row of a program) ---------------------------------------------

# "Who" filter values that name a kind of actor rather than one person → the actor labels they match.
ACTOR_KINDS = {
    "staff": ("Any team member", Q(actor_label__startswith="user:")),
    "api": ("API keys", Q(actor_label__startswith="api:")),
    "affiliate": (
        "Affiliates and applicants",
        Q(actor_label__startswith="affiliate:") | Q(actor_label__startswith="applicant:"),
    ),
    "stripe": ("Stripe", Q(actor_label="stripe")),
    "system": (
        "Scheduled jobs and commands",
        Q(actor_label="system") | Q(actor_label__startswith="command:"),
    ),
}


def audit_for_program(
    program: Program,
    *,
    actor: str = "",
    what: str = "",
    object_id: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[AuditLog]:
    """The program's audit rows, newest first, filtered by who, what (an action or its family), which
    object and which UTC days."""
    rows = AuditLog.objects.filter(program_id=program.pk)
    if actor in ACTOR_KINDS:
        rows = rows.filter(ACTOR_KINDS[actor][1])
    elif actor.startswith("user:") and actor[5:].isdigit():
        rows = rows.filter(Q(actor_id=int(actor[5:])) | Q(actor_label=actor))
    if what:
        rows = rows.filter(action=what) if "." in what else rows.filter(action__startswith=f"{what}")
    if object_id:
        rows = rows.filter(object_id=object_id.strip())
    rows = between_days(rows, "created_at", date_from, date_to)
    return rows.select_related("actor").order_by("-created_at", "-id")
