"""The back-office's template filters: every amount, price, quantity, date, instant and period a page
prints goes through them, in the reader's language, with ``billing_platform.formatting`` (Babel),
the formats of the invoice documents.

    {% load tripod_format %}
    {{ invoice.total|money }}                     12 345,67 €     €12,345.67
    {{ line.amount|money:invoice.currency }}      (a Decimal with its document's currency)
    {{ price|unit_price }}                        0,0125 €        €0.0125
    {{ quantity|number }}                         3 800           3,800
    {{ rate|percent }}                            20 %            20%
    {{ 0.95|ratio_percent }}                      95 %            95%
    {{ invoice.issue_date|day }}                  1 nov. 2026     1 Nov 2026
    {{ s.signed_at|local_day:tz_name }}           (the day of an instant in a time zone)
    {{ run.started_at|moment:tz_name }}           1 nov. 2026, 14:05 CET
    {{ e.at|moment_seconds:"UTC" }}               1 nov. 2026, 13:05:07 UTC
    {{ row.first|period:row.last }}               1–30 nov. 2026  1–30 Nov 2026
    {{ customer.country|country }}                France

A missing value (None) prints as an empty string, so ``|default:"—"`` can follow.
"""

from django import template

from backoffice import formatting

register = template.Library()

for name in (
    "money",
    "unit_price",
    "number",
    "percent",
    "ratio_percent",
    "day",
    "local_day",
    "moment",
    "moment_seconds",
    "period",
    "country",
):
    register.filter(name, getattr(formatting, name))
