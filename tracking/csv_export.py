"""Streamed CSV downloads for the panel: constant memory however many rows, safe to open in a spreadsheet.

It lives in `tracking`, the lowest app that exports, so that `commissions` can use it too without a
lower app ever importing a higher one.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.http import StreamingHttpResponse

from refapp.money import exponent, to_decimal

# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection"). Tab
# and carriage return are on the list too because some spreadsheets strip them and then see `=`.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer can feed a generator."""

    def write(self, value: str) -> str:
        return value


def safe_cell(value: Any) -> Any:
    """Neutralise text that a spreadsheet would run as a formula.

    Only text is touched: numbers we format ourselves (a negative reversal amount such as
    Decimal("-5.00")) cannot carry a formula and stay numeric for the spreadsheet.
    """
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return value
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def decimal_amount(cents: int | None, currency: str) -> Decimal:
    """Minor units as a decimal in major units with the currency's exact number of places."""
    return to_decimal(cents or 0, currency).quantize(Decimal(1).scaleb(-exponent(currency)))


def export_filename(slug: str, what: str, today: date) -> str:
    return f"{slug}-{what}-{today.isoformat()}.csv"


def csv_response(
    *, filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> StreamingHttpResponse:
    """Stream rows as CSV. Pass a lazy iterable (`queryset.iterator()`): nothing is held in memory."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([safe_cell(cell) for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
