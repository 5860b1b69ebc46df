"""CSV downloads of the back-office's and the portal's tables: one header row, then the rows as the
page shows them, streamed so a long table is never held in memory.

Cells are written for a spreadsheet or an ERP, not for the reader's language: amounts as plain
decimals at their currency's minor unit ("1234.50", "-25.00"), dates as ISO days, next to a
currency column where the table has several. Text that a spreadsheet would run as a formula
(starting with =, +, -, @, a tab or a carriage return) is written with a leading apostrophe; numbers
are not text and keep their sign.
"""

import csv
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from django.http import StreamingHttpResponse
from djmoney.money import Money

from billing_platform.money import round_minor
from billing_platform.rls import tenant_context

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file that hands back what is written to it, so csv.writer yields lines to stream."""

    def write(self, value: str) -> str:
        return value


def csv_cell(value: Any) -> Any:
    """One cell: a ``Money`` as its amount at the currency's minor unit, a number as it is, a day as
    YYYY-MM-DD, None as empty, text made safe from formulas."""
    if value is None:
        return ""
    if isinstance(value, Money):
        return round_minor(value.amount, value.currency.code)
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return value
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(*, header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The file's lines, one at a time: the header, then each row. A download streams them, and an
    export run in the background writes the same lines to its file, so both give the same bytes."""
    writer = csv.writer(_Echo())
    yield writer.writerow([csv_cell(label) for label in header])
    for row in rows:
        yield writer.writerow([csv_cell(cell) for cell in row])


def _scoped(lines: Iterator[str], tenant: Any) -> Iterator[str]:
    with tenant_context(tenant):
        yield from lines


def csv_response(
    *, filename: str, header: Sequence[Any], rows: Iterable[Sequence[Any]], tenant: Any = None
) -> StreamingHttpResponse:
    """A download of ``rows`` under ``header`` (labels, translated by the caller) as ``filename``.

    The rows are read as the response is sent, after the view has returned and the request's
    row-level-security scope has ended: rows that read the database lazily (a queryset's
    ``iterator()``) need ``tenant``, under whose scope they are then read."""
    lines = csv_lines(header=header, rows=rows)
    content = _scoped(lines, tenant) if tenant is not None else lines
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="%s"' % filename
    return response
