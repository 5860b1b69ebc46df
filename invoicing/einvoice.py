"""What makes a document a valid EN 16931 e-invoice, checked before it is finalized: the one list of
what is missing (``einvoice_missing``), which finalization (API and back-office), credit notes and
auto-finalizing bill runs all refuse on (``einvoice_check``); and whether a document carries a
Factur-X XML at all (``facturx_refusal``).

The rules behind each item (EN 16931-1 business rules, and the French CTC rules for a French
seller):

- the seller's legal name (BT-27), postal address with its city (BG-5, BR-08) and country (BR-09),
  and the e-mail customers write to (BT-34/BT-43; BR-FR-13 for a French seller);
- the seller's VAT number (BT-31) as soon as a line has a VAT category other than "not subject to
  VAT": BR-S-02, BR-Z-02, BR-E-02, BR-AE-02, BR-IC-02, BR-G-02; a SIREN does not replace it;
- the seller's legal registration (BT-30): a French seller's SIREN or SIRET (BR-FR-10), and any
  seller's on a document not subject to VAT, which may carry no VAT number (BR-O-02, BR-CO-26);
- the buyer's postal address with its city (BG-8, BR-10) and country (BR-11), and e-mail (BT-49,
  BR-FR-12);
- the buyer's VAT number for a reverse charge or an intra-community supply (BR-AE-03/04,
  BR-IC-03/04).
"""

from collections.abc import Iterable

from django.utils.translation import pgettext

from billing_platform.errors import FieldError
from billing_platform.money import minor_unit_exponent
from catalog.vat import EU_COUNTRIES, NEED_BUYER_VAT_NUMBER, NOT_SUBJECT, rated_vat_category, tenant_seller_country
from customers.models import Customer
from invoicing.errors import EinvoiceIncomplete, FacturxNotAvailable
from invoicing.models import Invoice, InvoiceLine, InvoicingSettings
from tenancy.models import RegistrationScheme, Tenant

# EN 16931 amounts have at most two decimals (BR-DEC-*): a currency with more has no e-invoice.
EN16931_MAX_DECIMALS = 2
# The registration schemes that carry a French SIREN (a SIRET starts with it).
FRENCH_REGISTRATIONS = frozenset({RegistrationScheme.SIREN, RegistrationScheme.SIRET})


def einvoice_applies(tenant: Tenant, settings: InvoicingSettings | None = None) -> bool:
    """Are the tenant's documents e-invoices? Always for a seller established in the EU; for one
    outside the EU once it turns Factur-X on."""
    if tenant_seller_country(tenant) in EU_COUNTRIES:
        return True
    if settings is None:
        settings = InvoicingSettings.objects.filter(tenant=tenant).first()
    return bool(settings and settings.facturx_outside_eu)


def facturx_refusal(invoice: Invoice, settings: InvoicingSettings | None = None) -> str:
    """Why ``invoice`` has no Factur-X XML ("" when it has one): a currency with three decimals
    (KWD, BHD...), which EN 16931 cannot express, or a seller outside the EU that did not turn it on."""
    if minor_unit_exponent(invoice.currency) > EN16931_MAX_DECIMALS:
        return (
            "EN 16931 allows at most two decimals: a %s document has no Factur-X XML; its PDF is the document."
            % invoice.currency
        )
    if not einvoice_applies(invoice.tenant, settings):
        return (
            "The seller is established outside the EU and has not turned Factur-X on (invoicing settings): "
            "the PDF is the document."
        )
    return ""


def invoice_vat_categories(invoice: Invoice) -> set[str]:
    """The EN 16931 categories of an invoice's lines (as written; older lines from their tax category)."""
    return {
        vat_category or rated_vat_category(tax_category)
        for vat_category, tax_category in invoice.lines.values_list("vat_category", "tax_category").distinct()
    }


def invoices_vat_categories(invoice_ids: Iterable[object]) -> dict[object, set[str]]:
    """``invoice_vat_categories`` of many invoices in one query, by invoice id."""
    categories: dict[object, set[str]] = {}
    rows = InvoiceLine.objects.filter(invoice_id__in=list(invoice_ids)).values_list(
        "invoice_id", "vat_category", "tax_category"
    )
    for invoice_id, vat_category, tax_category in rows.distinct():
        categories.setdefault(invoice_id, set()).add(vat_category or rated_vat_category(tax_category))
    return categories


def einvoice_missing(*, tenant: Tenant, customer: Customer, vat_categories: Iterable[str]) -> list[FieldError]:
    """What the document of ``tenant`` to ``customer`` with lines of ``vat_categories`` lacks to be a
    valid EN 16931 e-invoice, one error per missing field (``seller.…`` and ``buyer.…``); empty
    when nothing is missing."""
    categories = set(vat_categories)
    seller_country = tenant.country.upper()
    errors: list[FieldError] = []

    def missing(field: str, message: str) -> None:
        errors.append(FieldError(field, "required", message))

    if not tenant.legal_name:
        missing("seller.legal_name", "The seller's legal name (BT-27).")
    if not tenant.address_line1:
        missing("seller.address_line1", "The seller's postal address (BG-5).")
    if not tenant.city:
        missing("seller.city", "The seller's city (BT-37).")
    if not seller_country:
        missing("seller.country", "The seller's country (BT-40, BR-09).")
    if not tenant.billing_email:
        missing("seller.billing_email", "The e-mail address customers write to about invoices (BT-34, BT-43).")
    if categories - {NOT_SUBJECT} and not tenant.vat_number:
        missing(
            "seller.vat_number",
            "The seller's VAT number: required as soon as a line is subject to VAT (BR-S-02, BR-AE-02, BR-IC-02, "
            "BR-G-02, BR-Z-02, BR-E-02), even with a company registration number.",
        )
    french_registration = tenant.legal_registration_id and tenant.legal_registration_scheme in FRENCH_REGISTRATIONS
    if seller_country == "FR" and not french_registration:
        missing("seller.legal_registration_id", "A French seller's SIREN or SIRET (BT-30, BR-FR-10).")
    elif NOT_SUBJECT in categories and not tenant.legal_registration_id:
        missing(
            "seller.legal_registration_id",
            "The seller's company registration number: a document not subject to VAT carries no VAT number "
            "(BR-O-02), so it identifies the seller (BR-CO-26).",
        )
    if not customer.address_line1:
        missing("buyer.address_line1", "The customer's postal address (BG-8).")
    if not customer.city:
        missing("buyer.city", "The customer's city (BT-52).")
    if not customer.country:
        missing("buyer.country", "The customer's country (BT-55, BR-11).")
    if not customer.email:
        missing("buyer.email", "The customer's e-mail address (BT-49).")
    if categories & NEED_BUYER_VAT_NUMBER and not customer.tax_id:
        missing(
            "buyer.tax_id", "The customer's VAT number: required for a reverse charge or an intra-community supply."
        )
    return errors


def einvoice_check(*, tenant: Tenant, customer: Customer, vat_categories: Iterable[str]) -> None:
    """Refuse (``EinvoiceIncomplete``, 422) a document that would not be a valid EN 16931 e-invoice,
    naming every missing field; nothing to check for a seller whose documents are not e-invoices."""
    if not einvoice_applies(tenant):
        return
    errors = einvoice_missing(tenant=tenant, customer=customer, vat_categories=vat_categories)
    if errors:
        raise EinvoiceIncomplete(einvoice_incomplete_detail(errors), errors=errors)


def einvoice_draft_missing(invoice: Invoice) -> list[FieldError]:
    """What a draft lacks to be finalized (``einvoice_check``'s list), for a page to show before."""
    if not einvoice_applies(invoice.tenant):
        return []
    return einvoice_missing(
        tenant=invoice.tenant, customer=invoice.customer, vat_categories=invoice_vat_categories(invoice)
    )


def einvoice_incomplete_detail(errors: Iterable[FieldError]) -> str:
    return "Not a valid EN 16931 e-invoice yet, missing: %s." % ", ".join(e.field for e in errors)


def facturx_check(invoice: Invoice) -> None:
    """``FacturxNotAvailable`` (409) for a document without a Factur-X XML (``facturx_refusal``)."""
    refusal = facturx_refusal(invoice)
    if refusal:
        raise FacturxNotAvailable(refusal)


def missing_field_label(field: str) -> str:
    """A missing field's name for people, in the active language (the back-office's)."""
    labels = {
        "seller.legal_name": pgettext("e-invoice field", "your legal name"),
        "seller.address_line1": pgettext("e-invoice field", "your postal address"),
        "seller.city": pgettext("e-invoice field", "your city"),
        "seller.country": pgettext("e-invoice field", "your country"),
        "seller.billing_email": pgettext("e-invoice field", "your billing e-mail address"),
        "seller.vat_number": pgettext("e-invoice field", "your VAT number"),
        "seller.legal_registration_id": pgettext("e-invoice field", "your company registration (SIREN or SIRET)"),
        "buyer.address_line1": pgettext("e-invoice field", "the customer's postal address"),
        "buyer.city": pgettext("e-invoice field", "the customer's city"),
        "buyer.country": pgettext("e-invoice field", "the customer's country"),
        "buyer.email": pgettext("e-invoice field", "the customer's e-mail address"),
        "buyer.tax_id": pgettext("e-invoice field", "the customer's VAT number"),
    }
    return str(labels.get(field, field))
