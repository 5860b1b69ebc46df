"""The vocabulary of invoice lines: their types (``LineType``), the line before it is written
(``DraftLine``), the one rule for a line's sign (``line_signed_amount``) and the one rendering of its
description (``line_description``).

A line stores what it bills as data, never as English text to be parsed back: its name (the
product's, or a change's own words such as "Unused Basic") and its qualifiers, the facts that set it
apart from the product's other lines (``{"instalment": 2, "of": 12}``; ``{"from": "2026-03-15",
"to": "2026-04-01", "days": 17, "days_in_period": 31}``; ``{"late_usage": true}``). Each page renders
them in its own language: the API in English as it always has, the back-office in the reader's
language, the invoice document in the invoice's.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import models
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext

from billing_platform.formatting import last_day, period_text
from billing_platform.periods import Period

if TYPE_CHECKING:
    # For the annotations only: ``invoicing.models`` imports this module, and model modules do not
    # import each other's apps.
    from subscriptions.models import ChargeSource, Subscription

# The language of the API's descriptions, whatever the request's: the text it has always returned.
API_LANGUAGE = "en"


class LineType(models.TextChoices):
    HARDWARE = "hardware", _("Hardware")
    SERVICE = "service", _("Service")
    USAGE = "usage", _("Usage")
    FEE = "fee", _("Fee")
    CREDIT = "credit", _("Credit")


def line_signed_amount(line_type: str, amount: Decimal) -> Decimal:
    """A line's effect on its invoice's net total. Amounts are stored positive; a ``credit`` line
    subtracts: 50.00 of service and a 12.50 credit make 37.50."""
    return -amount if line_type == LineType.CREDIT else amount


def line_description(name: str, qualifiers: Mapping[str, Any], *, language: str | None) -> str:
    """A line's description in ``language``: its name and its qualifiers. ``("ELD-200", {"instalment":
    2, "of": 12})`` -> "ELD-200, instalment 2/12" ("ELD-200, échéance 2/12" in French). A line
    without qualifiers (one written before they existed included) is its name, as stored. A
    ``language`` of None (translation deactivated) is English.

    A proration's days are printed as every period is, with its last day: its ``to`` is exclusive
    (the next period's first day), so ``{"from": "2026-11-15", "to": "2026-12-01", "days": 16,
    "days_in_period": 30}`` reads "Fleet platform, 15–30 Nov 2026 (16/30)"."""
    if not qualifiers:
        return name
    text = name
    with translation.override(language):
        if "instalment" in qualifiers:
            text = pgettext("invoice line", "%(name)s, instalment %(number)s/%(count)s") % {
                "name": text,
                "number": qualifiers["instalment"],
                "count": qualifiers["of"],
            }
        if "days" in qualifiers:
            first = date.fromisoformat(qualifiers["from"])
            last = last_day(date.fromisoformat(qualifiers["to"]))
            text = pgettext("invoice line", "%(name)s, %(period)s (%(days)s/%(total)s)") % {
                "name": text,
                "period": period_text(first, last, language=language),
                "days": qualifiers["days"],
                "total": qualifiers["days_in_period"],
            }
        if qualifiers.get("late_usage"):
            text = pgettext("invoice line", "%(name)s (late usage)") % {"name": text}
    return text


@dataclass(frozen=True, kw_only=True)
class DraftLine:
    """A line of an invoice before it is written: computed for the projected invoice
    (``invoicing.fees``), composed into an invoice (``invoicing.composition``) or credited
    (``invoicing.services.credit_notes``), and written by ``invoice_lines_write``.

    ``amount`` is rounded once to the currency's minor unit and positive, a credit's included (its
    sign is ``signed_amount``); ``precise_amount`` is the unrounded figure it was rounded from, where
    there was one. ``source`` says which charge of the ledger a line is: an in-advance fee or an
    activation proration (the bill run records it), or a change's charge or credit (recorded by the
    change, and listed in ``charge_ids``); hardware and usage lines have none.
    """

    type: LineType
    product_code: str
    # What the line bills: the product's name, or a change's own words ("Unused Basic").
    product_name: str
    qualifiers: Mapping[str, Any] = field(default_factory=dict)
    quantity: Decimal
    unit_amount: Decimal | None
    amount: Decimal
    precise_amount: Decimal | None = None
    tax_category: str
    subscription: "Subscription | None" = None
    period: Period | None = None  # the service period it bills, when it bills one
    devices: tuple[str, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)  # how the amount was priced
    source: "ChargeSource | None" = None
    adjustment: bool = False  # late usage of a period an earlier invoice billed
    charge_ids: tuple[int, ...] = ()  # the pending change entries (``ServiceCharge``) it bills
    # The EN 16931 VAT category the tax decision gave it (``catalog.vat``): S, Z, E, AE, K, G or O.
    vat_category: str = ""

    @property
    def signed_amount(self) -> Decimal:
        return line_signed_amount(self.type, self.amount)

    @property
    def description(self) -> str:
        """The description as the API gives it (in English)."""
        return line_description(self.product_name, self.qualifiers, language=API_LANGUAGE)
