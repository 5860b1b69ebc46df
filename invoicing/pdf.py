"""An invoice as documents: the printable HTML and PDF/A-3b in the invoice's language, the EN 16931
Cross Industry Invoice XML (Factur-X, profile EN16931), and the two combined (the Factur-X PDF).

Nothing here writes to the database: ``invoicing.documents`` renders the Factur-X PDF once, at
finalization, and stores it. Every amount printed or exported is the stored, already rounded
figure; this module only formats and checks them, it never re-prices a line.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import facturx
from babel import Locale
from babel.dates import format_date, format_interval
from babel.numbers import format_decimal, format_percent
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import npgettext, pgettext
from djmoney.money import Money
from lxml import etree
from moneyed.l10n import format_money
from weasyprint import HTML

from billing_platform.money import minor_unit_exponent, round_minor
from billing_platform.periods import local_date
from catalog.vat import (
    EU_COUNTRIES,
    GOODS,
    NOT_SUBJECT,
    WITH_EXEMPTION_REASON,
    rated_vat_category,
    supply_of,
    tenant_seller_country,
    vat_category_label,
)
from customers.models import Customer
from invoicing.einvoice import facturx_check, facturx_refusal
from invoicing.errors import InvalidInvoiceTransition
from invoicing.lines import LineType, line_description
from invoicing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, InvoiceTax
from tenancy.legal_mentions import legal_mentions as tenant_legal_mentions
from tenancy.models import RegistrationScheme, Tenant

# Every string of the invoice documents (here and in templates/invoicing/) is translated in the
# context "invoice document", written out literally so that makemessages finds it: "Total" on an
# invoice ("Total TTC") must not collide with a back-office "Total".
BABEL_LOCALES = {"fr": "fr_FR", "en": "en_GB"}
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
# The countries of the SEPA scheme: a EUR transfer to an IBAN there is a SEPA credit transfer
# (UNTDID 4461 code 58), any other a plain credit transfer (30).
SEPA_COUNTRIES = EU_COUNTRIES | frozenset({"IS", "LI", "NO", "CH", "GB", "MC", "SM", "VA", "AD", "GI"})
PAYMENT_MEANS_SEPA_TRANSFER = "58"
PAYMENT_MEANS_TRANSFER = "30"
# Quantities in the XML keep at most four places (BR-FR-DEC-02).
MAX_QUANTITY_PLACES = 4
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


def invoice_due_date(invoice: Invoice) -> date:
    """The payment due date (BT-9): the issue date plus the tenant's payment terms, for an invoice
    and for a credit note alike (EN 16931 wants one or the terms on any document with an amount to
    pay, BR-CO-25; a credit note's is when its amount is refunded or set off). An invoice finalized
    with a due date of its own (the customer's terms) shows that one."""
    if invoice.due_date is not None:
        return invoice.due_date
    return invoice.issue_date + timedelta(days=invoice.tenant.payment_terms_days)


def paid_from_balance(invoice: Invoice) -> Decimal:
    """What the customer's credit balance paid of the invoice when it was finalized: the payments
    app's allocations of source ``balance``, read through the reverse relation (invoicing does not
    import payments). It is not a line: the total and the tax stay as invoiced."""
    if invoice.kind != InvoiceKind.INVOICE or invoice.pk is None:
        return Decimal(0)
    rows = invoice.allocations.filter(source="balance").values_list("amount", flat=True)
    return sum((Decimal(x) for x in rows), Decimal(0))


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


def line_vat_category(line: InvoiceLine) -> str:
    """The EN 16931 category of a stored line (a line written before the tax decision existed takes
    its product tax category's)."""
    return line.vat_category or rated_vat_category(line.tax_category)


def _tax_vat_category(tax: InvoiceTax) -> str:
    return tax.vat_category or rated_vat_category(tax.category)


# The rate of each line, by its (product tax category, EN 16931 category): the invoice's tax rows.
Rates = Mapping[tuple[str, str], Decimal]


def _tax_rates(taxes: Iterable[InvoiceTax]) -> dict[tuple[str, str], Decimal]:
    return {(t.category, _tax_vat_category(t)): t.rate for t in taxes}


def _line_rate(line: InvoiceLine, rates: Rates) -> Decimal:
    return rates.get((line.tax_category, line_vat_category(line)), Decimal(0))


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
        self.language = language
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


def _row(line: InvoiceLine, *, fmt: DocumentFormatter, rates: Rates, tz: str) -> Row:
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
        tax_rate=_line_tax_label(line, fmt, rates),
        amount=fmt.money(amount),
        negative=amount < 0,
        usage=_usage_block(line, fmt) if line.type == LineType.USAGE and not line.adjustment else None,
    )


def _line_tax_label(line: InvoiceLine, fmt: DocumentFormatter, rates: Rates) -> str:
    """The VAT column of a line: its rate, and the category's code where it is not plain VAT
    ("0 % AE"), which the mentions under the breakdown explain; "O" alone when not subject to VAT."""
    code = line_vat_category(line)
    if code == NOT_SUBJECT:
        return code
    rate = fmt.percent(_line_rate(line, rates))
    return "%s %s" % (rate, code) if code in WITH_EXEMPTION_REASON else rate


def _section_titles() -> dict[str, str]:
    return {
        LineType.HARDWARE: pgettext("invoice document", "Hardware"),
        LineType.SERVICE: pgettext("invoice document", "Service"),
        LineType.USAGE: pgettext("invoice document", "Usage"),
        "other": pgettext("invoice document", "Fees, credits and adjustments"),
    }


def invoice_context(invoice: Invoice) -> dict[str, Any]:
    """Everything the invoice template shows, already formatted; call it inside the invoice's language.

    A finalized document shows what it was when finalized: its amount due is its total (a credit
    note issued later does not change the invoice it credits)."""
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
    is_draft = invoice.status == InvoiceStatus.DRAFT or not invoice.number
    due = invoice_due_date(invoice)
    credited = invoice.credited_invoice
    breakdowns = _breakdowns(taxes, invoice.currency)
    from_balance = paid_from_balance(invoice)
    return {
        "language": invoice.language,
        "is_credit_note": is_credit_note,
        "is_draft": is_draft,
        "title": pgettext("invoice document", "Credit note")
        if is_credit_note
        else pgettext("invoice document", "Invoice"),
        "number": invoice.number or pgettext("invoice document", "Draft"),
        "issue_date": fmt.day(invoice.issue_date),
        "due_date": fmt.day(due),
        "payment_terms": payment_terms_text(invoice, fmt),
        "payment": _payment_context(invoice),
        "credited_number": credited.number if credited else "",
        "credited_date": fmt.day(credited.issue_date) if credited else "",
        "reason": invoice.reason,
        "currency": invoice.currency,
        "seller": _seller_context(tenant, fmt),
        "buyer": {
            "name": customer.name,
            "address": _address_lines(
                customer.address_line1, customer.address_line2, customer.postal_code, customer.city
            ),
            "country": fmt.country(customer.country),
            "tax_id": vat_id(tax_id=customer.tax_id, country=customer.country) if customer.tax_id else "",
            "email": customer.email,
        },
        "sections": sections,
        "taxes": [
            {
                "category": "%s (%s)" % (vat_category_label(b.code), b.code),
                "rate": "" if b.code == NOT_SUBJECT else fmt.percent(b.rate),
                "base": fmt.money(b.base),
                "amount": fmt.money(b.amount),
            }
            for b in breakdowns
        ],
        # The legal mention of each 0 % or exempt category (the XML's exemption reasons).
        "exemptions": [b.exemption_reason for b in breakdowns if b.exemption_reason],
        "mentions": [text for _, text in legal_mentions(invoice, fmt)],
        "net_total": fmt.money(invoice.net_total),
        "tax_total": fmt.money(invoice.tax_total),
        "total": fmt.money(invoice.total),
        "paid_from_balance": fmt.money(from_balance) if from_balance > 0 else "",
        "amount_due": fmt.money(invoice.total.amount - from_balance),
        "facturx": not is_draft and not facturx_refusal(invoice),
    }


def payment_terms_text(invoice: Invoice, fmt: DocumentFormatter) -> str:
    """The payment terms (BT-20) in the document's language: when an invoice is due, or how a credit
    note is settled."""
    due = invoice_due_date(invoice)
    days = (due - invoice.issue_date).days if invoice.due_date is not None else invoice.tenant.payment_terms_days
    credited = invoice.credited_invoice
    if invoice.kind == InvoiceKind.CREDIT_NOTE:
        return pgettext(
            "invoice document",
            "Set off against invoice %(number)s, or refunded within %(days)s days of the issue date, by %(date)s.",
        ) % {"number": credited.number if credited else "", "days": days, "date": fmt.day(due)}
    if days == 0:
        return pgettext("invoice document", "Payment due on receipt, on %(date)s.") % {"date": fmt.day(due)}
    return pgettext("invoice document", "Payment due within %(days)s days of the issue date, by %(date)s.") % {
        "days": days,
        "date": fmt.day(due),
    }


def _payment_context(invoice: Invoice) -> dict[str, str]:
    """How to pay: the tenant's account for transfers (BG-17) and its SEPA creditor identifier."""
    tenant = invoice.tenant
    if invoice.kind == InvoiceKind.CREDIT_NOTE:
        return {}
    return {
        "iban": _spaced(tenant.iban),
        "bic": tenant.bic,
        "reference": invoice.number,
        "sepa_creditor_id": tenant.sepa_creditor_id,
    }


def _spaced(iban: str) -> str:
    """An IBAN as printed, in groups of four: FR76 3000 6000 0112 3456 7890 189."""
    compact = iban.replace(" ", "").upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _address_lines(line1: str, line2: str, postal_code: str, city: str) -> list[str]:
    town = " ".join(part for part in (postal_code, city) if part)
    return [line for line in (line1, line2, town) if line]


def is_business_buyer(customer: Customer) -> bool:
    """A customer with a VAT number is a business: the French recovery indemnity applies to it."""
    return bool(customer.tax_id)


def legal_mentions(invoice: Invoice, fmt: DocumentFormatter) -> list[tuple[str, str]]:
    """The payment mentions of a document with their UNTDID 4451 subject codes, in its language
    (``tenancy.legal_mentions``: a French seller's late-payment penalty, recovery indemnity for a
    business buyer and early-payment discount, each the tenant's own text or the default)."""
    return [
        (mention.subject_code, mention.text)
        for mention in tenant_legal_mentions(
            invoice.tenant, language=fmt.language, business_buyer=is_business_buyer(invoice.customer)
        )
    ]


def _seller_context(tenant: Tenant, fmt: DocumentFormatter) -> dict[str, Any]:
    """The seller block: legal name (and the trading name when it differs), address, VAT number and
    legal registration; what the tenant has not filled in is left out."""
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
        "address": _address_lines(tenant.address_line1, tenant.address_line2, tenant.postal_code, tenant.city),
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
    if _places(units) > MAX_QUANTITY_PLACES:
        # 12.3456789 MB is billed as 12.3457: the price below still multiplies back to the amount.
        units = units.quantize(Decimal(1).scaleb(-MAX_QUANTITY_PLACES), rounding=ROUND_HALF_UP)
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
    exemption_reason_code: str = ""
    exemption_reason: str = ""


def _breakdowns(taxes: Sequence[InvoiceTax], currency: str) -> list[VatBreakdown]:
    """One VAT breakdown (BG-23) per EN 16931 category and rate: the invoice's tax rows of one
    category and rate (standard and reduced products at one rate; the products of a reverse-charged
    document) are merged, with the exemption reason they share."""
    merged: dict[tuple[str, Decimal], tuple[Decimal, Decimal]] = {}
    reasons: dict[tuple[str, Decimal], tuple[str, str]] = {}
    for tax in taxes:
        key = (_tax_vat_category(tax), tax.rate.normalize())
        base, amount = merged.get(key, (Decimal(0), Decimal(0)))
        merged[key] = (base + round_minor(tax.base, currency), amount + round_minor(tax.amount, currency))
        if key not in reasons or not reasons[key][1]:
            reasons[key] = (tax.exemption_reason_code, tax.exemption_reason)
    return [
        VatBreakdown(code, rate, base, amount, *reasons[(code, rate)])
        for (code, rate), (base, amount) in sorted(merged.items())
    ]


def invoice_cii_xml(invoice: Invoice) -> bytes:
    """The EN 16931 Cross Industry Invoice of a finalized invoice or credit note (Factur-X EN16931).

    Line amounts are the stored, rounded amounts (``credit`` lines negative); LineTotalAmount is
    their sum, TaxBasisTotal = LineTotal (no document-level allowances or charges), GrandTotal =
    TaxBasisTotal + TaxTotal, DuePayable = GrandTotal: the document as finalized, whatever was paid or
    credited since. Smart Fleet 1 April: 60.00 + 13.71 + 9.68 + 50.00 + 17.52 = 150.91; 150.91 +
    30.18 = 181.09. ``FacturxNotAvailable`` (409) for a document that has none (three decimals, a
    seller outside the EU that did not turn it on).
    """
    if not invoice.number:
        raise InvalidInvoiceTransition("A draft has no number: finalize it before building its Factur-X XML.")
    facturx_check(invoice)
    # The free texts (exemption reasons, mentions, device notes) are in the invoice's language, as on the PDF.
    with translation.override(invoice.language):
        return _cii_xml(invoice)


def _business_process(lines: Sequence[InvoiceLine]) -> str:
    """The French billing mode (BT-23, BR-FR-08): B1 goods, S1 services, M1 both; each a plain
    invoice or credit note to be paid ("1")."""
    supplies = {supply_of(line.type) for line in lines}
    if supplies == {GOODS}:
        return "B1"
    return "M1" if GOODS in supplies else "S1"


def _cii_xml(invoice: Invoice) -> bytes:
    currency = invoice.currency
    customer, tenant = invoice.customer, invoice.tenant
    fmt = DocumentFormatter(language=invoice.language, currency=currency)
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
    seller_country = tenant_seller_country(tenant)
    # A document not subject to VAT carries no VAT identifier at all (BR-O-02).
    not_subject = any(b.code == NOT_SUBJECT for b in breakdowns)

    root = etree.Element("{%s}CrossIndustryInvoice" % NS["rsm"], nsmap=NS)
    context = _el(root, "rsm:ExchangedDocumentContext")
    if seller_country == "FR":
        _el(_el(context, "ram:BusinessProcessSpecifiedDocumentContextParameter"), "ram:ID", _business_process(lines))
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", EN16931_GUIDELINE)

    document = _el(root, "rsm:ExchangedDocument")
    _el(document, "ram:ID", invoice.number)
    _el(document, "ram:TypeCode", TYPE_CODE_CREDIT_NOTE if is_credit_note else TYPE_CODE_INVOICE)
    _date_102(document, "ram:IssueDateTime", invoice.issue_date)
    if invoice.reason:
        _el(_el(document, "ram:IncludedNote"), "ram:Content", invoice.reason)
    for subject, text in legal_mentions(invoice, fmt):  # BG-1, with their UNTDID 4451 subject codes
        note = _el(document, "ram:IncludedNote")
        _el(note, "ram:Content", text)
        _el(note, "ram:SubjectCode", subject)

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
    _seller_party(agreement, tenant, with_vat_number=not not_subject)
    _buyer_party(agreement, customer, with_vat_number=not not_subject)

    # BG-13: delivered to the buyer's address (its country is what an intra-community supply needs,
    # BR-IC-12); a document whose lines have no service period gets its issue date as the delivery
    # date (BR-IC-11 wants it or a period).
    delivery = _el(transaction, "ram:ApplicableHeaderTradeDelivery")
    ship_to = _el(delivery, "ram:ShipToTradeParty")
    _el(ship_to, "ram:Name", customer.name)
    _postal_address(
        ship_to, customer.address_line1, customer.address_line2, customer.postal_code, customer.city, customer.country
    )
    period = _document_period(lines, customer.timezone)
    if period is None:
        event = _el(delivery, "ram:ActualDeliverySupplyChainEvent")
        _date_102(event, "ram:OccurrenceDateTime", invoice.issue_date)

    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    if not is_credit_note:
        _el(settlement, "ram:PaymentReference", invoice.number)  # BT-83, the transfer's reference
    _el(settlement, "ram:InvoiceCurrencyCode", currency)
    if not is_credit_note and tenant.iban:
        means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")  # BG-16
        iban = tenant.iban.replace(" ", "").upper()
        sepa = currency == "EUR" and iban[:2] in SEPA_COUNTRIES
        _el(means, "ram:TypeCode", PAYMENT_MEANS_SEPA_TRANSFER if sepa else PAYMENT_MEANS_TRANSFER)
        _el(_el(means, "ram:PayeePartyCreditorFinancialAccount"), "ram:IBANID", iban)  # BT-84
        if tenant.bic:
            _el(_el(means, "ram:PayeeSpecifiedCreditorFinancialInstitution"), "ram:BICID", tenant.bic)  # BT-86
    for b in breakdowns:
        tax = _el(settlement, "ram:ApplicableTradeTax")
        _el(tax, "ram:CalculatedAmount", _amount(b.amount, currency))
        _el(tax, "ram:TypeCode", "VAT")
        if b.code in WITH_EXEMPTION_REASON and b.exemption_reason:
            _el(tax, "ram:ExemptionReason", b.exemption_reason)  # BT-120
        _el(tax, "ram:BasisAmount", _amount(b.base, currency))
        _el(tax, "ram:CategoryCode", b.code)
        if b.code in WITH_EXEMPTION_REASON and b.exemption_reason_code:
            _el(tax, "ram:ExemptionReasonCode", b.exemption_reason_code)  # BT-121
        if b.code != NOT_SUBJECT:  # BR-O-08: no rate when not subject to VAT
            _el(tax, "ram:RateApplicablePercent", _rate(b.rate))
    if period is not None:
        billing = _el(settlement, "ram:BillingSpecifiedPeriod")  # BG-14
        _date_102(billing, "ram:StartDateTime", period[0])
        _date_102(billing, "ram:EndDateTime", period[1])
    terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")  # BT-20 and BT-9 (BR-CO-25)
    _el(terms, "ram:Description", payment_terms_text(invoice, fmt))
    _date_102(terms, "ram:DueDateDateTime", invoice_due_date(invoice))
    summation = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(summation, "ram:LineTotalAmount", _amount(line_total, currency))
    _el(summation, "ram:TaxBasisTotalAmount", _amount(line_total, currency))
    _el(summation, "ram:TaxTotalAmount", _amount(tax_total, currency), currencyID=currency)
    _el(summation, "ram:GrandTotalAmount", _amount(grand_total, currency))
    _el(summation, "ram:DuePayableAmount", _amount(grand_total, currency))
    credited = invoice.credited_invoice
    if credited is not None and credited.number:
        reference = _el(settlement, "ram:InvoiceReferencedDocument")  # BG-3: the invoice corrected
        _el(reference, "ram:IssuerAssignedID", credited.number)
        _date_102(reference, "ram:FormattedIssueDateTime", credited.issue_date, qualified=True)

    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _document_period(lines: Sequence[InvoiceLine], tz: str) -> tuple[date, date] | None:
    """The first and last days the document's lines bill (BG-14), None when no line has a period."""
    periods = [p for p in (_line_period(line, tz) for line in lines) if p is not None]
    if not periods:
        return None
    return min(p[0] for p in periods), max(p[1] for p in periods)


def _postal_address(party: Any, line1: str, line2: str, postal_code: str, city: str, country: str) -> None:
    """A PostalTradeAddress in TradeAddressType's order, leaving out what is blank."""
    address = _el(party, "ram:PostalTradeAddress")
    for tag, value in (
        ("ram:PostcodeCode", postal_code),
        ("ram:LineOne", line1),
        ("ram:LineTwo", line2),
        ("ram:CityName", city),
    ):
        if value:
            _el(address, tag, value)
    _el(address, "ram:CountryID", country.upper())


def _french_siren(tenant: Tenant) -> str:
    """A French seller's SIREN (BT-30 with scheme 0002, BR-FR-10): its registration, or a SIRET's
    first nine digits."""
    number = tenant.legal_registration_id
    if tenant.legal_registration_scheme == RegistrationScheme.SIREN:
        return number
    if tenant.legal_registration_scheme == RegistrationScheme.SIRET:
        return number[:9]
    return ""


def _seller_party(agreement: Any, tenant: Tenant, *, with_vat_number: bool) -> None:
    """BG-4, in the order of the CII schema (TradePartyType): GlobalID, Name,
    SpecifiedLegalOrganization, DefinedTradeContact, PostalTradeAddress, URIUniversalCommunication,
    SpecifiedTaxRegistration.

    A French seller's legal registration is its SIREN (scheme 0002), a SIRET then being its
    identifier (BT-29, scheme 0009). The VAT identifier (BT-31) is what BR-S-02 asks of a document
    with a line subject to VAT, and must be left out of one not subject to VAT (BR-O-02).
    """
    seller = _el(agreement, "ram:SellerTradeParty")
    french = tenant_seller_country(tenant) == "FR"
    siren = _french_siren(tenant) if french else ""
    if siren and tenant.legal_registration_scheme == RegistrationScheme.SIRET:
        _el(seller, "ram:GlobalID", tenant.legal_registration_id, schemeID=RegistrationScheme.SIRET)
    _el(seller, "ram:Name", tenant.seller_name)
    trading_name = tenant.name if tenant.seller_name != tenant.name else ""
    if tenant.legal_registration_id or trading_name:
        organization = _el(seller, "ram:SpecifiedLegalOrganization")
        if siren:
            _el(organization, "ram:ID", siren, schemeID=RegistrationScheme.SIREN)
        elif tenant.legal_registration_id:
            scheme = {"schemeID": tenant.legal_registration_scheme} if tenant.legal_registration_scheme else {}
            _el(organization, "ram:ID", tenant.legal_registration_id, **scheme)
        if trading_name:
            _el(organization, "ram:TradingBusinessName", trading_name)  # BT-28
    if tenant.billing_email:
        contact = _el(seller, "ram:DefinedTradeContact")  # BG-6, its e-mail BT-43
        _el(_el(contact, "ram:EmailURIUniversalCommunication"), "ram:URIID", tenant.billing_email)
    _postal_address(
        seller,
        tenant.address_line1,
        tenant.address_line2,
        tenant.postal_code,
        tenant.city,
        tenant_seller_country(tenant),
    )
    if tenant.billing_email:  # BT-34, the seller's electronic address (BR-FR-13)
        _el(_el(seller, "ram:URIUniversalCommunication"), "ram:URIID", tenant.billing_email, schemeID="EM")
    if tenant.vat_number and with_vat_number:
        _el(_el(seller, "ram:SpecifiedTaxRegistration"), "ram:ID", tenant.vat_number, schemeID="VA")


def _buyer_siren(customer: Customer) -> str:
    """A French buyer's SIREN, read from its French VAT number (FR, two check characters, the
    SIREN): BT-47, scheme 0002."""
    if customer.country.upper() != "FR":
        return ""
    number = vat_id(tax_id=customer.tax_id, country=customer.country)
    return number[4:] if number.startswith("FR") and len(number) == 13 and number[4:].isdigit() else ""


def _buyer_party(agreement: Any, customer: Customer, *, with_vat_number: bool) -> None:
    """BG-7 in TradePartyType's order: name, legal registration (a French buyer's SIREN), postal
    address (BG-8), electronic address (BT-49: its billing e-mail) and VAT number (BT-48, left out
    of a document not subject to VAT)."""
    buyer = _el(agreement, "ram:BuyerTradeParty")
    _el(buyer, "ram:Name", customer.name)
    siren = _buyer_siren(customer)
    if siren:
        _el(_el(buyer, "ram:SpecifiedLegalOrganization"), "ram:ID", siren, schemeID=RegistrationScheme.SIREN)
    _postal_address(
        buyer, customer.address_line1, customer.address_line2, customer.postal_code, customer.city, customer.country
    )
    if customer.email:
        _el(_el(buyer, "ram:URIUniversalCommunication"), "ram:URIID", customer.email, schemeID="EM")
    if customer.tax_id and with_vat_number:
        registration = _el(buyer, "ram:SpecifiedTaxRegistration")
        _el(registration, "ram:ID", vat_id(tax_id=customer.tax_id, country=customer.country), schemeID="VA")


def _line_item(
    transaction: Any,
    *,
    index: int,
    line: InvoiceLine,
    currency: str,
    rates: Rates,
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
    code = line_vat_category(line)
    _el(tax, "ram:CategoryCode", code)
    if code != NOT_SUBJECT:  # BR-O-05: no rate on a line not subject to VAT
        _el(tax, "ram:RateApplicablePercent", _rate(_line_rate(line, rates)))
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
    ``FacturxNotAvailable`` (409) for a document that has no XML (``einvoice.facturx_refusal``).

    The schematrons are not run here: the tests run them (with saxonche) on every kind of document.
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


def invoice_finalized_pdf(invoice: Invoice) -> bytes:
    """The document stored at finalization: the Factur-X PDF, or the plain PDF/A-3b of a document
    that has no XML (``einvoice.facturx_refusal``)."""
    return invoice_pdf(invoice) if facturx_refusal(invoice) else invoice_facturx_pdf(invoice)
