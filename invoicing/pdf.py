"""An invoice as documents: the printable HTML and PDF/A-3b in the invoice's language, the EN 16931
Cross Industry Invoice XML (Factur-X, profile EN16931), and the two combined (the Factur-X PDF).

Nothing here writes to the database: ``invoicing.documents`` renders the Factur-X PDF once, at
finalization, and stores it. Every amount printed or exported is the stored, already rounded
figure; this module only formats and checks them, it never re-prices a line.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import facturx
from babel import Locale
from babel.dates import format_date, format_interval
from babel.numbers import format_decimal, format_percent
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import npgettext, pgettext
from djmoney.money import Money
from lxml import etree
from moneyed.l10n import format_money
from weasyprint import HTML

from billing_platform.money import minor_unit_exponent, round_minor
from billing_platform.periods import local_date
from catalog.models import TaxCategory
from invoicing.errors import InvalidInvoiceTransition
from invoicing.lines import LineType, line_description
from invoicing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, InvoiceTax
from tenancy.models import RegistrationScheme, Tenant

# Every string of the invoice documents (here and in templates/invoicing/) is translated in the
# context "invoice document", written out literally so that makemessages finds it: "Total" on an
# invoice ("Total TTC") must not collide with a back-office "Total".
BABEL_LOCALES = {"fr": "fr_FR", "en": "en_GB"}
# The seller is the tenant; while it has not given its own country, the country comes from settings
# (FR when unset).
DEFAULT_SELLER_COUNTRY = "FR"
# The short names of the registers (ISO/IEC 6523 ICD, EN 16931 BT-30 scheme) as printed on an
# invoice, "SIREN : 732829320"; they are names, not translated.
REGISTRATION_SCHEME_NAMES: dict[str, str] = {
    RegistrationScheme.SIREN: "SIREN",
    RegistrationScheme.SIRET: "SIRET",
    RegistrationScheme.SE_ORGNR: "Org.nr",
    RegistrationScheme.DUNS: "D-U-N-S",
    RegistrationScheme.GLN: "GLN",
    RegistrationScheme.NL_KVK: "KvK",
    RegistrationScheme.DK_CVR: "CVR",
    RegistrationScheme.BE_KBO: "KBO-BCE",
}
DEFAULT_PAYMENT_TERMS_DAYS = 30
# UNTDID 5305 as restricted by EN 16931 (BR-CL-17) has no "AA": a reduced rate is category S with
# its own rate, and gets its own VAT breakdown because breakdowns are per (category code, rate).
VAT_CATEGORY_CODES: dict[str, str] = {
    TaxCategory.STANDARD: "S",
    TaxCategory.REDUCED: "S",
    TaxCategory.ZERO: "Z",
    TaxCategory.EXEMPT: "E",
}
# Unit prices (BT-146) keep at most this many places; enough for 0.005 EUR per MB tiers.
MAX_PRICE_PLACES = 6

SECTIONS = (LineType.HARDWARE, LineType.SERVICE, LineType.USAGE, "other")

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
EN16931_GUIDELINE = "urn:cen.eu:en16931:2017"
TYPE_CODE_INVOICE = "380"
TYPE_CODE_CREDIT_NOTE = "381"

# --- shared helpers ------------------------------------------------------------------------------


def babel_locale(language: str) -> str:
    return BABEL_LOCALES.get(language, BABEL_LOCALES["en"])


def seller_country() -> str:
    return str(getattr(settings, "TRIPOD", {}).get("SELLER_COUNTRY", DEFAULT_SELLER_COUNTRY)).upper()


def tenant_seller_country(tenant: Tenant) -> str:
    """The seller's country (BT-40): the tenant's own, or the settings' while it has given none."""
    return tenant.country.upper() if tenant.country else seller_country()


def payment_terms_days() -> int:
    return int(getattr(settings, "TRIPOD", {}).get("PAYMENT_TERMS_DAYS", DEFAULT_PAYMENT_TERMS_DAYS))


def invoice_due_date(invoice: Invoice) -> date | None:
    """The payment due date of an invoice (issue date + the payment terms); a credit note has none."""
    if invoice.kind == InvoiceKind.CREDIT_NOTE:
        return None
    return invoice.issue_date + timedelta(days=payment_terms_days())


def vat_id(*, tax_id: str, country: str) -> str:
    """A VAT identifier with its country prefix (BT-48): ``40303265045`` in FR -> ``FR40303265045``.
    Greece's VAT prefix is EL, not its ISO code GR."""
    tax_id = tax_id.strip().replace(" ", "")
    if not tax_id or tax_id[:2].isalpha():
        return tax_id.upper()
    return ("EL" if country.upper() == "GR" else country.upper()) + tax_id


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _plain(value: Decimal) -> Decimal:
    """``Decimal("3800.0000000000")`` -> ``3800`` (never exponent form, never "-0")."""
    value = value.normalize()
    if value == value.to_integral_value():
        value = value.quantize(Decimal(1))
    return value.copy_abs() if value.is_zero() else value


def _places(value: Decimal) -> int:
    """Decimal places a value needs: ``0.0100000000`` -> 2, ``25.00`` -> 0."""
    exponent = _plain(value).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _line_period(line: InvoiceLine, tz: str) -> tuple[date, date] | None:
    """The first and last local days of a line's service period; periods end exclusively, at a
    local midnight, so the last day is the one before ``period_end``."""
    if line.period_start is None or line.period_end is None:
        return None
    first = local_date(line.period_start, tz)
    last = local_date(line.period_end - timedelta(microseconds=1), tz)
    return first, max(first, last)


def _tax_rates(taxes: Iterable[InvoiceTax]) -> dict[str, Decimal]:
    return {t.category: t.rate for t in taxes}


# --- HTML and PDF -------------------------------------------------------------------------------


@dataclass
class TierRow:
    range: str
    units: str
    unit_price: str
    flat_fee: str
    amount: str
    entered: bool


@dataclass
class UsageBlock:
    meter: str
    metered: str
    allowance: str
    allowance_note: str
    billable: str
    tiers: list[TierRow] = field(default_factory=list)
    groups: list[tuple[str, str, str]] = field(default_factory=list)  # combination, quantity, amount
    per_device: list[tuple[str, str, str, str]] = field(default_factory=list)  # device, metered, billable, amount


@dataclass
class Row:
    label: str
    notes: list[str]
    period: str
    devices: list[str]
    quantity: str
    unit_price: str
    tax_rate: str
    amount: str
    negative: bool
    usage: UsageBlock | None


@dataclass
class Section:
    key: str
    title: str
    rows: list[Row]
    subtotal: str


class DocumentFormatter:
    """Babel formatting in the invoice's locale (``fr_FR``: 3 800 MB, 181,09 €, 1 avril 2026)."""

    def __init__(self, *, language: str, currency: str) -> None:
        self.locale = babel_locale(language)
        self.currency = currency

    def money(self, amount: Money | Decimal) -> str:
        """An amount at its currency's minor unit (181,09 €): a ``Money`` in the invoice's currency,
        or a line's ``Decimal``, which is in it."""
        if isinstance(amount, Money):
            if amount.currency.code != self.currency:
                raise ValueError("a %s amount on a %s document" % (amount.currency.code, self.currency))
            amount = amount.amount
        return format_money(Money(round_minor(amount, self.currency), self.currency), locale=self.locale)

    def unit_price(self, amount: Decimal) -> str:
        """Unit prices keep their own places (0,005 €), at least the currency's (25,00 €)."""
        places = max(minor_unit_exponent(self.currency), _places(amount))
        shown = amount.quantize(Decimal(1).scaleb(-min(places, MAX_PRICE_PLACES)))
        return format_money(Money(shown, self.currency), locale=self.locale, decimal_quantization=False)

    def number(self, value: Decimal) -> str:
        return format_decimal(_plain(value), locale=self.locale, decimal_quantization=False)

    def percent(self, rate: Decimal) -> str:
        return format_percent(_plain(rate) / 100, locale=self.locale, decimal_quantization=False)

    def day(self, day: date) -> str:
        return format_date(day, format="long", locale=self.locale)

    def period(self, first: date, last: date) -> str:
        if first == last:
            return format_date(first, format="medium", locale=self.locale)
        return str(format_interval(first, last, "yMMMd", locale=self.locale))

    def country(self, code: str) -> str:
        return str(Locale.parse(self.locale).territories.get(code.upper(), code.upper()))


def _section_of(line: InvoiceLine) -> str:
    if line.adjustment or line.type not in (LineType.HARDWARE, LineType.SERVICE, LineType.USAGE):
        return "other"
    return line.type


def _notes(line: InvoiceLine, fmt: DocumentFormatter) -> list[str]:
    """What qualifies the line, each fact a note under its name (the row's label), in the invoice's
    language: its instalment, its proration, that it is a credit or late usage."""
    detail: Mapping[str, Any] = line.detail or {}
    qualifiers: Mapping[str, Any] = line.qualifiers or {}
    notes = []
    if "instalment" in qualifiers:
        notes.append(
            pgettext("invoice document", "Instalment %(number)s of %(count)s")
            % {"number": qualifiers["instalment"], "count": qualifiers["of"]}
        )
    if "days" in qualifiers:
        notes.append(
            pgettext("invoice document", "Prorated: %(days)s of %(total)s days")
            % {"days": qualifiers["days"], "total": qualifiers["days_in_period"]}
        )
    if line.type == LineType.CREDIT:
        notes.append(pgettext("invoice document", "Credit"))
    # An adjustment, or a credit-note line that credits one (it keeps the qualifier, not the flag).
    if line.adjustment or qualifiers.get("late_usage"):
        notes.append(pgettext("invoice document", "Adjustment: late usage of a period already invoiced"))
        billed = _decimal(detail.get("billed_quantity"))
        if billed is not None:
            notes.append(
                pgettext("invoice document", "Already invoiced: %(quantity)s") % {"quantity": fmt.number(billed)}
            )
    return notes


def _tier_range(tier: Mapping[str, Any], fmt: DocumentFormatter) -> str:
    lower = _decimal(tier.get("from")) or Decimal(0)
    upper = _decimal(tier.get("up_to"))
    if upper is None:
        return pgettext("invoice document", "above %(from)s") % {"from": fmt.number(lower)}
    return pgettext("invoice document", "%(from)s to %(to)s") % {"from": fmt.number(lower), "to": fmt.number(upper)}


def _usage_block(line: InvoiceLine, fmt: DocumentFormatter) -> UsageBlock:
    """Metered quantity, pooled allowance, billable quantity, and the tier or matrix breakdown."""
    detail: Mapping[str, Any] = line.detail or {}
    metered = _decimal(detail.get("metered_quantity"))
    devices = _decimal(detail.get("devices"))
    per_device_allowance = _decimal(detail.get("included_per_device"))
    allowance = _decimal(detail.get("allowance"))
    if allowance is None and devices is not None and per_device_allowance is not None:
        allowance = per_device_allowance * devices
    billable = _decimal(detail.get("billable", detail.get("billable_quantity")))
    if billable is None:
        billable = line.quantity  # a usage line's quantity is its billable quantity
    allowance_note = ""
    if per_device_allowance and devices is not None:
        allowance_note = npgettext(
            "invoice document",
            "%(included)s per device, %(devices)s device",
            "%(included)s per device, %(devices)s devices",
            int(devices),
        ) % {"included": fmt.number(per_device_allowance), "devices": fmt.number(devices)}
    block = UsageBlock(
        meter=str(detail.get("meter", "")),
        metered=fmt.number(metered) if metered is not None else "",
        allowance=fmt.number(allowance) if allowance is not None else "",
        allowance_note=allowance_note,
        billable=fmt.number(billable),
    )
    for tier in detail.get("tiers") or []:
        units = _decimal(tier.get("units")) or Decimal(0)
        flat = _decimal(tier.get("flat_amount")) or Decimal(0)
        block.tiers.append(
            TierRow(
                range=_tier_range(tier, fmt),
                units=fmt.number(units),
                unit_price=fmt.unit_price(_decimal(tier.get("unit_amount")) or Decimal(0)),
                flat_fee=fmt.money(flat) if flat else "",
                amount=fmt.money(_decimal(tier.get("amount")) or Decimal(0)),
                entered=units > 0 or flat > 0,
            )
        )
    # jsonb does not keep key order: the matrix's own list of dimensions gives the column order.
    dimensions = [str(d) for d in detail.get("dimensions") or []]
    for group in detail.get("groups") or []:
        values = group.get("values") or {}
        if isinstance(values, Mapping):
            ordered = [values[d] for d in dimensions if d in values] + [
                v for k, v in sorted(values.items()) if k not in dimensions
            ]
            combination = " · ".join(str(v) for v in ordered)
        else:
            combination = str(values)
        block.groups.append(
            (
                combination,
                fmt.number(_decimal(group.get("quantity")) or Decimal(0)),
                fmt.money(_decimal(group.get("amount")) or Decimal(0)),
            )
        )
    for device in detail.get("per_device") or []:
        block.per_device.append(
            (
                str(device.get("device_id", "")),
                fmt.number(_decimal(device.get("quantity")) or Decimal(0)),
                fmt.number(_decimal(device.get("billable_quantity")) or Decimal(0)),
                fmt.money(_decimal(device.get("amount")) or Decimal(0)),
            )
        )
    return block


def _shown_unit_price(line: InvoiceLine, currency: str) -> Decimal | None:
    """The printed unit price: the stored one when quantity × price (× the proration fraction)
    gives the amount back (3 × 20.00; 1 × 25.00 × 17/31 = 13.71), otherwise (a partial credit
    note) the net price of the XML. Usage without a single unit price prints none: its tier or
    matrix breakdown explains the amount."""
    if line.unit_amount is not None:
        fraction = _decimal((line.detail or {}).get("fraction")) or Decimal(1)
        if round_minor(abs(line.quantity) * line.unit_amount * fraction, currency) == line.amount:
            return line.unit_amount
    elif line.type == LineType.USAGE:
        return None
    return _net_price(line, currency)[1]


def _row(line: InvoiceLine, *, fmt: DocumentFormatter, rates: Mapping[str, Decimal], tz: str) -> Row:
    period = _line_period(line, tz)
    amount = line.signed_amount
    unit_price = _shown_unit_price(line, fmt.currency)
    return Row(
        # The name alone: the notes state its qualifiers.
        label=line.description,
        notes=_notes(line, fmt),
        period=fmt.period(*period) if period else "",
        devices=[str(d) for d in line.devices or []],
        quantity=fmt.number(line.quantity),
        unit_price=fmt.unit_price(unit_price) if unit_price is not None else "",
        tax_rate=fmt.percent(rates.get(line.tax_category, Decimal(0))),
        amount=fmt.money(amount),
        negative=amount < 0,
        usage=_usage_block(line, fmt) if line.type == LineType.USAGE and not line.adjustment else None,
    )


def _section_titles() -> dict[str, str]:
    return {
        LineType.HARDWARE: pgettext("invoice document", "Hardware"),
        LineType.SERVICE: pgettext("invoice document", "Service"),
        LineType.USAGE: pgettext("invoice document", "Usage"),
        "other": pgettext("invoice document", "Fees, credits and adjustments"),
    }


def invoice_context(invoice: Invoice) -> dict[str, Any]:
    """Everything the invoice template shows, already formatted; call it inside the invoice's language."""
    customer, tenant = invoice.customer, invoice.tenant
    fmt = DocumentFormatter(language=invoice.language, currency=invoice.currency)
    lines = list(invoice.lines.all())
    taxes = list(invoice.taxes.all())
    rates = _tax_rates(taxes)
    titles = _section_titles()
    sections = []
    for key in SECTIONS:
        members = [line for line in lines if _section_of(line) == key]
        if members:
            sections.append(
                Section(
                    key=key,
                    title=titles[key],
                    rows=[_row(line, fmt=fmt, rates=rates, tz=customer.timezone) for line in members],
                    subtotal=fmt.money(sum((line.signed_amount for line in members), Decimal(0))),
                )
            )
    is_credit_note = invoice.kind == InvoiceKind.CREDIT_NOTE
    due = invoice_due_date(invoice)
    credited = invoice.credited_invoice
    return {
        "language": invoice.language,
        "is_credit_note": is_credit_note,
        "is_draft": invoice.status == InvoiceStatus.DRAFT or not invoice.number,
        "title": pgettext("invoice document", "Credit note")
        if is_credit_note
        else pgettext("invoice document", "Invoice"),
        "number": invoice.number or pgettext("invoice document", "Draft"),
        "issue_date": fmt.day(invoice.issue_date),
        "due_date": fmt.day(due) if due else "",
        "payment_terms": (
            pgettext("invoice document", "Payment due within %(days)s days of the issue date, by %(date)s.")
            % {"days": payment_terms_days(), "date": fmt.day(due)}
            if due
            else ""
        ),
        "credited_number": credited.number if credited else "",
        "credited_date": fmt.day(credited.issue_date) if credited else "",
        "reason": invoice.reason,
        "currency": invoice.currency,
        "seller": _seller_context(tenant, fmt),
        "buyer": {
            "name": customer.name,
            "country": fmt.country(customer.country),
            "tax_id": vat_id(tax_id=customer.tax_id, country=customer.country) if customer.tax_id else "",
            "email": customer.email,
        },
        "sections": sections,
        "taxes": [
            {
                "category": str(TaxCategory(t.category).label) if t.category in TaxCategory.values else t.category,
                "rate": fmt.percent(t.rate),
                "base": fmt.money(t.base),
                "amount": fmt.money(t.amount),
            }
            for t in taxes
        ],
        "net_total": fmt.money(invoice.net_total),
        "tax_total": fmt.money(invoice.tax_total),
        "total": fmt.money(invoice.total),
        "amount_due": fmt.money(invoice.amount_due),
    }


def _seller_context(tenant: Tenant, fmt: DocumentFormatter) -> dict[str, Any]:
    """The seller block: legal name (and the trading name when it differs), address, VAT number and
    legal registration; what the tenant has not filled in is left out."""
    city = " ".join(part for part in (tenant.postal_code, tenant.city) if part)
    registration = ""
    if tenant.legal_registration_id:
        scheme = REGISTRATION_SCHEME_NAMES.get(tenant.legal_registration_scheme)
        if scheme:
            registration = pgettext("invoice document", "%(scheme)s: %(number)s") % {
                "scheme": scheme,
                "number": tenant.legal_registration_id,
            }
        else:
            registration = pgettext("invoice document", "Registration number: %(number)s") % {
                "number": tenant.legal_registration_id
            }
    return {
        "name": tenant.seller_name,
        "brand": tenant.name,
        "trading_name": tenant.name if tenant.seller_name != tenant.name else "",
        "address": [line for line in (tenant.address_line1, tenant.address_line2, city) if line],
        "country": fmt.country(tenant_seller_country(tenant)),
        "vat_number": tenant.vat_number,
        "registration": registration,
        "email": tenant.billing_email,
    }


def invoice_html(invoice: Invoice) -> str:
    """The invoice (or credit note) as print HTML, in the invoice's language and locale."""
    with translation.override(invoice.language):
        return render_to_string("invoicing/invoice.html", invoice_context(invoice))


def invoice_pdf(invoice: Invoice) -> bytes:
    """The printable PDF (PDF/A-3b, fonts embedded, no network: the template loads nothing)."""
    pdf = HTML(string=invoice_html(invoice)).write_pdf(pdf_variant="pdf/a-3b")
    assert pdf is not None  # write_pdf returns bytes when no target is given
    return bytes(pdf)


# --- EN 16931 CII XML ----------------------------------------------------------------------------


def _el(parent: Any, tag: str, text: str | None = None, **attrs: str) -> Any:
    prefix, name = tag.split(":")
    element = etree.SubElement(parent, "{%s}%s" % (NS[prefix], name), attrs)
    if text is not None:
        element.text = text
    return element


def _date_102(parent: Any, tag: str, day: date, *, qualified: bool = False) -> None:
    holder = _el(parent, tag)
    _el(holder, "qdt:DateTimeString" if qualified else "udt:DateTimeString", day.strftime("%Y%m%d"), format="102")


def _amount(value: Decimal, currency: str) -> str:
    """An amount with the currency's exponent: ``150.91`` EUR, ``1235`` JPY, never ``-0.00``."""
    rounded = round_minor(value, currency)
    return str(rounded.copy_abs() if rounded.is_zero() else rounded)


def _rate(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _quantity(value: Decimal) -> str:
    return format(_plain(value), "f")


def _net_price(line: InvoiceLine, currency: str) -> tuple[Decimal, Decimal]:
    """The (billed quantity, net unit price) of a line, so that quantity × price gives back its amount.

    EN 16931 forbids negative prices (BR-27): a credit line is a negative quantity at a positive
    price. The stored unit price is used when it multiplies back to the amount (3 × 20.00 = 60.00);
    otherwise (prorated fees: 1 × 25.00 × 17/31 = 13.71, graduated usage) the price is amount ÷
    quantity with the fewest places, from the currency's to six, that still multiply back
    (17.52 ÷ 1752 = 0.01; 104.64 ÷ 10928 = 0.009575, × 10928 = 104.6356 -> 104.64).
    """
    signed = line.signed_amount
    amount = abs(round_minor(signed, currency))
    units = abs(line.quantity)
    if units == 0:
        # Nothing measured but something charged (a minimum): one unit at that amount.
        units = Decimal(1) if amount else Decimal(0)
    quantity = -units if signed < 0 else units
    if units == 0:
        return quantity, Decimal(0)
    unit = line.unit_amount
    if unit is not None and unit >= 0 and round_minor(unit * units, currency) == amount:
        return quantity, _plain(unit)
    exact = amount / units
    for places in range(minor_unit_exponent(currency), MAX_PRICE_PLACES + 1):
        price = exact.quantize(Decimal(1).scaleb(-places))
        if round_minor(price * units, currency) == amount:
            return quantity, _plain(price)
    return quantity, _plain(exact.quantize(Decimal(1).scaleb(-MAX_PRICE_PLACES)))


@dataclass(frozen=True)
class VatBreakdown:
    code: str
    rate: Decimal
    base: Decimal
    amount: Decimal
    exempt: bool


def _breakdowns(taxes: Sequence[InvoiceTax], currency: str) -> list[VatBreakdown]:
    """One VAT breakdown (BG-23) per category code and rate; two Tripod categories that map to the
    same code and rate (standard and reduced at one rate) are merged."""
    merged: dict[tuple[str, Decimal], tuple[Decimal, Decimal]] = {}
    for tax in taxes:
        key = (VAT_CATEGORY_CODES.get(tax.category, "S"), tax.rate.normalize())
        base, amount = merged.get(key, (Decimal(0), Decimal(0)))
        merged[key] = (base + round_minor(tax.base, currency), amount + round_minor(tax.amount, currency))
    return [
        VatBreakdown(code=code, rate=rate, base=base, amount=amount, exempt=code == "E")
        for (code, rate), (base, amount) in sorted(merged.items())
    ]


def invoice_cii_xml(invoice: Invoice) -> bytes:
    """The EN 16931 Cross Industry Invoice of a finalized invoice or credit note (Factur-X EN16931).

    Line amounts are the stored, rounded amounts (``credit`` lines negative); LineTotalAmount is
    their sum, TaxBasisTotal = LineTotal (no document-level allowances or charges), GrandTotal =
    TaxBasisTotal + TaxTotal, DuePayable = GrandTotal − TotalPrepaid. Smart Fleet 1 April:
    60.00 + 13.71 + 9.68 + 50.00 + 17.52 = 150.91; 150.91 + 30.18 = 181.09.
    """
    if not invoice.number:
        raise InvalidInvoiceTransition("A draft has no number: finalize it before building its Factur-X XML.")
    # The free texts (exemption reason, device notes) are in the invoice's language, as on the PDF.
    with translation.override(invoice.language):
        return _cii_xml(invoice)


def _cii_xml(invoice: Invoice) -> bytes:
    currency = invoice.currency
    customer, tenant = invoice.customer, invoice.tenant
    lines = list(invoice.lines.all())
    taxes = list(invoice.taxes.all())
    rates = _tax_rates(taxes)
    breakdowns = _breakdowns(taxes, currency)
    line_total = sum((round_minor(line.signed_amount, currency) for line in lines), Decimal(0))
    tax_total = sum((b.amount for b in breakdowns), Decimal(0))
    grand_total = line_total + tax_total
    # The stored totals are what the customer was told: a document that disagrees with them is a bug.
    stored = (round_minor(invoice.net_total.amount, currency), round_minor(invoice.total.amount, currency))
    if stored != (line_total, grand_total):
        raise ValueError(
            "invoice %s: stored totals %s / %s differ from its lines and taxes %s / %s"
            % (invoice.number, invoice.net_total.amount, invoice.total.amount, line_total, grand_total)
        )
    is_credit_note = invoice.kind == InvoiceKind.CREDIT_NOTE
    due_payable = grand_total if is_credit_note else round_minor(invoice.amount_due.amount, currency)
    prepaid = grand_total - due_payable

    root = etree.Element("{%s}CrossIndustryInvoice" % NS["rsm"], nsmap=NS)
    context = _el(root, "rsm:ExchangedDocumentContext")
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", EN16931_GUIDELINE)

    document = _el(root, "rsm:ExchangedDocument")
    _el(document, "ram:ID", invoice.number)
    _el(document, "ram:TypeCode", TYPE_CODE_CREDIT_NOTE if is_credit_note else TYPE_CODE_INVOICE)
    _date_102(document, "ram:IssueDateTime", invoice.issue_date)
    if invoice.reason:
        _el(_el(document, "ram:IncludedNote"), "ram:Content", invoice.reason)

    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    for index, line in enumerate(lines, start=1):
        _line_item(
            transaction,
            index=index,
            line=line,
            currency=currency,
            rates=rates,
            tz=customer.timezone,
            language=invoice.language,
        )

    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    _seller_party(agreement, tenant)
    buyer = _el(agreement, "ram:BuyerTradeParty")
    _el(buyer, "ram:Name", customer.name)
    _el(_el(buyer, "ram:PostalTradeAddress"), "ram:CountryID", customer.country.upper())
    if customer.email:
        _el(_el(buyer, "ram:URIUniversalCommunication"), "ram:URIID", customer.email, schemeID="EM")
    if customer.tax_id:
        registration = _el(buyer, "ram:SpecifiedTaxRegistration")
        _el(registration, "ram:ID", vat_id(tax_id=customer.tax_id, country=customer.country), schemeID="VA")

    _el(transaction, "ram:ApplicableHeaderTradeDelivery")

    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    _el(settlement, "ram:InvoiceCurrencyCode", currency)
    for b in breakdowns:
        tax = _el(settlement, "ram:ApplicableTradeTax")
        _el(tax, "ram:CalculatedAmount", _amount(b.amount, currency))
        _el(tax, "ram:TypeCode", "VAT")
        if b.exempt:
            _el(tax, "ram:ExemptionReason", pgettext("invoice document", "Exempt from VAT"))
        _el(tax, "ram:BasisAmount", _amount(b.base, currency))
        _el(tax, "ram:CategoryCode", b.code)
        _el(tax, "ram:RateApplicablePercent", _rate(b.rate))
    due = invoice_due_date(invoice)
    if due is not None:
        terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
        _date_102(terms, "ram:DueDateDateTime", due)
    summation = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(summation, "ram:LineTotalAmount", _amount(line_total, currency))
    _el(summation, "ram:TaxBasisTotalAmount", _amount(line_total, currency))
    _el(summation, "ram:TaxTotalAmount", _amount(tax_total, currency), currencyID=currency)
    _el(summation, "ram:GrandTotalAmount", _amount(grand_total, currency))
    if prepaid:
        _el(summation, "ram:TotalPrepaidAmount", _amount(prepaid, currency))
    _el(summation, "ram:DuePayableAmount", _amount(due_payable, currency))
    credited = invoice.credited_invoice
    if credited is not None and credited.number:
        reference = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(reference, "ram:IssuerAssignedID", credited.number)
        _date_102(reference, "ram:FormattedIssueDateTime", credited.issue_date, qualified=True)

    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _seller_party(agreement: Any, tenant: Tenant) -> None:
    """BG-4, in the order of the CII schema (TradePartyType): Name, SpecifiedLegalOrganization,
    DefinedTradeContact, PostalTradeAddress, SpecifiedTaxRegistration.

    The VAT identifier (BT-31) is what BR-S-02 asks of an invoice with a standard-rated line, and it
    or the legal registration (BT-30) what BR-CO-26 asks of every invoice; both stay out while the
    tenant has not given them, since an empty identifier breaks the schema.
    """
    seller = _el(agreement, "ram:SellerTradeParty")
    _el(seller, "ram:Name", tenant.seller_name)
    trading_name = tenant.name if tenant.seller_name != tenant.name else ""
    if tenant.legal_registration_id or trading_name:
        organization = _el(seller, "ram:SpecifiedLegalOrganization")
        if tenant.legal_registration_id:
            scheme = {"schemeID": tenant.legal_registration_scheme} if tenant.legal_registration_scheme else {}
            _el(organization, "ram:ID", tenant.legal_registration_id, **scheme)
        if trading_name:
            _el(organization, "ram:TradingBusinessName", trading_name)  # BT-28
    if tenant.billing_email:
        contact = _el(seller, "ram:DefinedTradeContact")  # BG-6, its e-mail BT-43
        _el(_el(contact, "ram:EmailURIUniversalCommunication"), "ram:URIID", tenant.billing_email)
    address = _el(seller, "ram:PostalTradeAddress")  # BG-5, TradeAddressType's order
    for tag, value in (
        ("ram:PostcodeCode", tenant.postal_code),
        ("ram:LineOne", tenant.address_line1),
        ("ram:LineTwo", tenant.address_line2),
        ("ram:CityName", tenant.city),
    ):
        if value:
            _el(address, tag, value)
    _el(address, "ram:CountryID", tenant_seller_country(tenant))
    if tenant.vat_number:
        _el(_el(seller, "ram:SpecifiedTaxRegistration"), "ram:ID", tenant.vat_number, schemeID="VA")


def _line_item(
    transaction: Any,
    *,
    index: int,
    line: InvoiceLine,
    currency: str,
    rates: Mapping[str, Decimal],
    tz: str,
    language: str,
) -> None:
    item = _el(transaction, "ram:IncludedSupplyChainTradeLineItem")
    document = _el(item, "ram:AssociatedDocumentLineDocument")
    _el(document, "ram:LineID", str(index))
    if line.devices:
        note = npgettext("invoice document", "Device: %(ids)s", "Devices: %(ids)s", len(line.devices)) % {
            "ids": ", ".join(str(d) for d in line.devices)
        }
        _el(_el(document, "ram:IncludedNote"), "ram:Content", note)
    product = _el(item, "ram:SpecifiedTradeProduct")
    if line.product:
        _el(product, "ram:SellerAssignedID", line.product)
    # BT-153, the item name: the line's description in the invoice's language, as the back-office shows it.
    _el(product, "ram:Name", line_description(line.description, line.qualifiers, language=language) or line.product)
    quantity, price = _net_price(line, currency)
    agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
    places = max(_places(price), minor_unit_exponent(currency))
    _el(
        _el(agreement, "ram:NetPriceProductTradePrice"),
        "ram:ChargeAmount",
        format(price.quantize(Decimal(1).scaleb(-places)), "f"),
    )
    _el(_el(item, "ram:SpecifiedLineTradeDelivery"), "ram:BilledQuantity", _quantity(quantity), unitCode="C62")
    settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
    tax = _el(settlement, "ram:ApplicableTradeTax")
    _el(tax, "ram:TypeCode", "VAT")
    _el(tax, "ram:CategoryCode", VAT_CATEGORY_CODES.get(line.tax_category, "S"))
    _el(tax, "ram:RateApplicablePercent", _rate(rates.get(line.tax_category, Decimal(0))))
    period = _line_period(line, tz)
    if period is not None:
        billing = _el(settlement, "ram:BillingSpecifiedPeriod")
        _date_102(billing, "ram:StartDateTime", period[0])
        _date_102(billing, "ram:EndDateTime", period[1])
    summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
    _el(summation, "ram:LineTotalAmount", _amount(line.signed_amount, currency))


# --- Factur-X -------------------------------------------------------------------------------------


def invoice_facturx_pdf(invoice: Invoice) -> bytes:
    """The PDF/A-3b with its CII XML embedded as ``factur-x.xml`` (Factur-X EN16931), XSD-checked.

    The EN 16931 schematron is not run: it needs a Saxon server that this deployment does not have.
    """
    xml = invoice_cii_xml(invoice)
    with translation.override(invoice.language):
        title = "%s %s" % (
            pgettext("invoice document", "Credit note")
            if invoice.kind == InvoiceKind.CREDIT_NOTE
            else pgettext("invoice document", "Invoice"),
            invoice.number,
        )
    pdf = facturx.generate_from_binary(
        invoice_pdf(invoice),
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=True,
        check_schematron=False,
        pdf_metadata={
            "author": invoice.tenant.seller_name,
            "keywords": "Factur-X, EN 16931",
            "title": title,
            "subject": "%s, %s" % (title, invoice.customer.name),
        },
        lang=babel_locale(invoice.language).replace("_", "-"),
    )
    return bytes(pdf)
