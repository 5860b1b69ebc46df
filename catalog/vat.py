"""Which VAT applies to a line: the one home of the tax decision (specs/taxes.md), used by invoices,
projected invoices and quotes alike.

The decision reads the seller's country (the tenant's), the buyer's country, whether the buyer
gave a valid EU VAT number (format and check digits, as ``customers`` validates it) and what the
line sells: hardware is goods; service, usage and fees are services. It gives each line an EN 16931
VAT category (UNTDID 5305, as restricted by BR-CL-17), the country whose rate table applies (none
for the 0 % categories) and, for the categories that need one, the exemption reason code (VATEX)
and its legal mention in the document's language.

Seller established in an EU country X:

=====================================  ==============================  ===============================
buyer                                  hardware (goods)                service, usage, fees
=====================================  ==============================  ===============================
in X                                   X's rate: S, Z or E by the product's tax category
in another EU country, VAT number      K, 0 %, VATEX-EU-IC             AE, 0 %, VATEX-EU-AE
in another EU country, no VAT number   the buyer country's rate (OSS): S, Z or E
outside the EU                         G, 0 %, VATEX-EU-G              O, VATEX-EU-O; G on a document
                                                                       that also exports goods
=====================================  ==============================  ===============================

EN 16931 lets a document "not subject to VAT" (O) hold nothing else (BR-O-11 to BR-O-14) and carry
no VAT identifier (BR-O-02): services to a buyer outside the EU are O on a document of services
only; on one that also exports goods they take the export's G, whose mention then names both.

A seller established outside the EU keeps the rate table of the buyer's country (a US state's sales
tax as a rate, for example): S, Z or E by the product's tax category.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.utils import translation
from django.utils.translation import pgettext
from stdnum.eu import vat

from catalog.models import ProductKind, TaxCategory
from tenancy.legal_mentions import seller_country
from tenancy.models import Tenant

# ISO 3166-1 codes of the EU member states (Greece is GR here; its VAT prefix is EL).
EU_COUNTRIES = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())

# EN 16931 VAT category codes (BT-118, BT-151).
STANDARD = "S"
ZERO_RATED = "Z"
EXEMPT = "E"
REVERSE_CHARGE = "AE"
INTRA_COMMUNITY = "K"
EXPORT = "G"
NOT_SUBJECT = "O"
VAT_CATEGORIES = (STANDARD, ZERO_RATED, EXEMPT, REVERSE_CHARGE, INTRA_COMMUNITY, EXPORT, NOT_SUBJECT)
# The categories taxed at a rate of the table, by the product's tax category; the others are 0 %.
RATED: dict[str, str] = {
    TaxCategory.STANDARD: STANDARD,
    TaxCategory.REDUCED: STANDARD,
    TaxCategory.ZERO: ZERO_RATED,
    TaxCategory.EXEMPT: EXEMPT,
}
# The exemption reason code (BT-121, CEF VATEX list) of each category that needs one. Exempt (E)
# has a text only: which article exempts a product is the seller's to know, not Tripod's.
EXEMPTION_CODES = {
    REVERSE_CHARGE: "VATEX-EU-AE",
    INTRA_COMMUNITY: "VATEX-EU-IC",
    EXPORT: "VATEX-EU-G",
    NOT_SUBJECT: "VATEX-EU-O",
}
# Categories whose breakdown carries an exemption reason (BR-E-10, BR-AE-10, BR-IC-10, BR-G-10,
# BR-O-10); S and Z must not carry one (BR-S-10, BR-Z-10).
WITH_EXEMPTION_REASON = frozenset({EXEMPT, *EXEMPTION_CODES})
# Categories that need the buyer's VAT number (BR-AE-03, BR-IC-03... on the buyer).
NEED_BUYER_VAT_NUMBER = frozenset({REVERSE_CHARGE, INTRA_COMMUNITY})

GOODS = "goods"
SERVICES = "services"


def supply_of(line_type: str) -> str:
    """What a line sells, from its type (a ``ProductKind`` or an invoice line type): hardware is
    goods; services, usage, fees, and credits (of service charges) are services."""
    return GOODS if line_type == ProductKind.HARDWARE else SERVICES


def valid_eu_vat_number(tax_id: str, country: str) -> str:
    """The buyer's EU VAT number with its prefix when it is one (format and check digits, as
    ``customers`` validates it), else ""."""
    tax_id = tax_id.strip().replace(" ", "").upper()
    if not tax_id:
        return ""
    number = tax_id if tax_id[:2].isalpha() else ("EL" if country.upper() == "GR" else country.upper()) + tax_id
    if number[:2].lower() not in vat.MEMBER_STATES and number[:2] != "EL":
        return ""
    return number if vat.is_valid(number) else ""


@dataclass(frozen=True)
class TaxParties:
    """Who sells to whom, as far as VAT is concerned."""

    seller_country: str
    buyer_country: str
    # A valid EU VAT number of the buyer (with its prefix), or "".
    buyer_vat_number: str = ""

    @property
    def seller_in_eu(self) -> bool:
        return self.seller_country in EU_COUNTRIES

    @property
    def buyer_in_eu(self) -> bool:
        return self.buyer_country in EU_COUNTRIES

    @property
    def domestic(self) -> bool:
        return self.seller_country == self.buyer_country


def tenant_seller_country(tenant: Tenant) -> str:
    """The seller's country (BT-40): the tenant's own, or the settings' while it has given none
    (``tenancy.legal_mentions.seller_country``, the one home of that rule)."""
    return seller_country(tenant)


def tax_parties(*, seller_country: str, buyer_country: str, buyer_tax_id: str = "") -> TaxParties:
    return TaxParties(
        seller_country=seller_country.upper(),
        buyer_country=buyer_country.upper(),
        buyer_vat_number=valid_eu_vat_number(buyer_tax_id, buyer_country) if buyer_tax_id else "",
    )


@dataclass(frozen=True)
class Treatment:
    """How a line is taxed: its EN 16931 category and whether a rate of the table applies (the
    buyer country's, for ``tax_category``) or none (0 %)."""

    vat_category: str
    rated: bool

    @property
    def exemption_reason_code(self) -> str:
        return EXEMPTION_CODES.get(self.vat_category, "")


@dataclass(frozen=True)
class TaxDecision:
    """The decision for one document: its parties, and whether it holds goods and services (an
    export of goods turns its services from O to G)."""

    parties: TaxParties
    has_goods: bool = False
    has_services: bool = False

    @property
    def rate_country(self) -> str:
        """The country whose rate table applies where a rate does: the buyer's (the seller's own
        for a domestic sale, the buyer's under OSS, and the buyer's for a seller outside the EU)."""
        return self.parties.buyer_country

    def treatment(self, *, line_type: str, tax_category: str) -> Treatment:
        p = self.parties
        rated = Treatment(RATED.get(tax_category, STANDARD), rated=True)
        if not p.seller_in_eu or p.domestic:
            return rated
        goods = supply_of(line_type) == GOODS
        if p.buyer_in_eu:
            if not p.buyer_vat_number:
                return rated  # B2C: the buyer country's rate (OSS)
            return Treatment(INTRA_COMMUNITY if goods else REVERSE_CHARGE, rated=False)
        if goods or self.has_goods:
            return Treatment(EXPORT, rated=False)
        return Treatment(NOT_SUBJECT, rated=False)

    def vat_category(self, *, line_type: str, tax_category: str) -> str:
        return self.treatment(line_type=line_type, tax_category=tax_category).vat_category

    def exemption_reason(self, vat_category: str, *, language: str | None) -> str:
        """The legal mention of a category (BT-120), in the document's language; "" for S and Z."""
        return exemption_reason(vat_category, language=language, with_services=self.has_goods and self.has_services)


def tax_decision(parties: TaxParties, line_types: Iterable[str]) -> TaxDecision:
    supplies = {supply_of(t) for t in line_types}
    return TaxDecision(parties, has_goods=GOODS in supplies, has_services=SERVICES in supplies)


def exemption_reason(vat_category: str, *, language: str | None, with_services: bool = False) -> str:
    """The legal mention of a 0 % or exempt category in ``language`` (the EU VAT directive's
    articles, which hold for a seller in any member state). ``with_services``: an export of goods
    that also bills services (both under G)."""
    with translation.override(language):
        if vat_category == EXEMPT:
            return pgettext("invoice document", "Exempt from VAT")
        if vat_category == REVERSE_CHARGE:
            return pgettext(
                "invoice document",
                "Reverse charge: VAT to be accounted for by the customer (Article 196 of Directive 2006/112/EC)",
            )
        if vat_category == INTRA_COMMUNITY:
            return pgettext(
                "invoice document",
                "Intra-community supply of goods, exempt from VAT (Article 138 of Directive 2006/112/EC)",
            )
        if vat_category == EXPORT and with_services:
            return pgettext(
                "invoice document",
                "Export outside the EU: goods exempt from VAT (Article 146 of Directive 2006/112/EC), services "
                "not subject to VAT in the EU (Article 44 of Directive 2006/112/EC)",
            )
        if vat_category == EXPORT:
            return pgettext(
                "invoice document", "Export outside the EU, exempt from VAT (Article 146 of Directive 2006/112/EC)"
            )
        if vat_category == NOT_SUBJECT:
            return pgettext(
                "invoice document",
                "Not subject to VAT in the EU: services to a customer established outside the EU "
                "(Articles 44 and 59 of Directive 2006/112/EC)",
            )
    return ""


def vat_category_label(vat_category: str) -> str:
    """The name of an EN 16931 category, as printed in a VAT breakdown (in the active language)."""
    labels = {
        STANDARD: pgettext("invoice document", "Standard rate"),
        ZERO_RATED: pgettext("invoice document", "Zero rated"),
        EXEMPT: pgettext("invoice document", "Exempt"),
        REVERSE_CHARGE: pgettext("invoice document", "Reverse charge"),
        INTRA_COMMUNITY: pgettext("invoice document", "Intra-community supply"),
        EXPORT: pgettext("invoice document", "Export outside the EU"),
        NOT_SUBJECT: pgettext("invoice document", "Not subject to VAT"),
    }
    return labels.get(vat_category, vat_category)


def rated_vat_category(tax_category: str) -> str:
    """The category of a product taxed at a rate of the table: standard and reduced are S (EN 16931
    has no reduced code: a reduced rate is S at its own rate), zero Z, exempt E."""
    return RATED.get(tax_category, STANDARD)


__all__ = [
    "EU_COUNTRIES",
    "EXEMPT",
    "EXPORT",
    "INTRA_COMMUNITY",
    "NEED_BUYER_VAT_NUMBER",
    "NOT_SUBJECT",
    "REVERSE_CHARGE",
    "STANDARD",
    "VAT_CATEGORIES",
    "WITH_EXEMPTION_REASON",
    "ZERO_RATED",
    "TaxDecision",
    "TaxParties",
    "Treatment",
    "exemption_reason",
    "rated_vat_category",
    "supply_of",
    "tax_decision",
    "tax_parties",
    "tenant_seller_country",
    "valid_eu_vat_number",
    "vat_category_label",
]
