"""What a tenant's documents say about payment: its payment instructions (the account to pay by
transfer, the SEPA creditor identifier for direct debits, the payment terms) and its legal mentions
(late-payment penalty, recovery indemnity, early-payment discount), in a language.

The one home of the mentions' default texts: the invoice documents (PDF and Factur-X notes), the
settings page (which shows what a blank text will print) and the documentation read them here.

A French seller must print three mentions on every B2B invoice (Code de commerce L441-9; BR-FR-05 of
the French e-invoicing rules, as notes with UNTDID 4451 subject codes):

| subject code | mention | default |
|---|---|---|
| ``PMD`` | late-payment penalty | "Pénalités de retard : trois fois le taux d'intérêt légal" |
| ``PMT`` | fixed recovery indemnity, business buyers only | "Indemnité forfaitaire pour frais de recouvrement : 40 €" |
| ``AAB`` | early-payment discount, or that there is none | "Pas d'escompte pour paiement anticipé" |

A tenant's own text replaces the default, printed as typed; a blank text prints the default of the
seller's country. Other countries have no default: a mention is printed when the tenant wrote one
(the recovery indemnity is a French mention, with the tenant's amount).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils import translation
from django.utils.translation import pgettext

from billing_platform.formatting import money_text
from tenancy.models import Tenant

# The seller's country while the tenant has not given its own (the TRIPOD["SELLER_COUNTRY"] setting).
DEFAULT_SELLER_COUNTRY = "FR"
# The countries whose mentions have defaults here.
COUNTRIES_WITH_DEFAULTS = frozenset({"FR"})

# UNTDID 4451 text subject codes of the notes (EN 16931 BT-21) that carry each mention.
LATE_PAYMENT_PENALTY = "PMD"
RECOVERY_INDEMNITY = "PMT"
EARLY_PAYMENT_DISCOUNT = "AAB"
# The currency of the recovery indemnity: the law states it in euros (Code de commerce D441-5).
RECOVERY_INDEMNITY_CURRENCY = "EUR"


@dataclass(frozen=True)
class LegalMention:
    """One mention as printed: its note's subject code, its text in the document's language, and
    whether it is the country's default (the tenant left it blank)."""

    subject_code: str
    text: str
    default: bool


@dataclass(frozen=True)
class PaymentInstructions:
    """How a customer pays the tenant (EN 16931 BG-16, BG-17, BG-19): blank what is not given."""

    iban: str
    bic: str
    sepa_creditor_id: str
    payment_terms_days: int


def seller_country(tenant: Tenant) -> str:
    """The seller's country (BT-40): the tenant's own, or the settings' while it has given none."""
    if tenant.country:
        return tenant.country.upper()
    return str(getattr(settings, "TRIPOD", {}).get("SELLER_COUNTRY", DEFAULT_SELLER_COUNTRY)).upper()


def payment_instructions(tenant: Tenant) -> PaymentInstructions:
    return PaymentInstructions(
        iban=tenant.iban,
        bic=tenant.bic,
        sepa_creditor_id=tenant.sepa_creditor_id,
        payment_terms_days=tenant.payment_terms_days,
    )


def default_late_payment_penalty(country: str, *, language: str | None) -> str:
    """What a blank late-payment penalty prints for a seller in ``country`` ("" where none)."""
    if country.upper() not in COUNTRIES_WITH_DEFAULTS:
        return ""
    with translation.override(language):
        return pgettext("invoice document", "Late-payment penalty: three times the French legal interest rate")


def default_early_payment_discount(country: str, *, language: str | None) -> str:
    """What a blank early-payment discount prints for a seller in ``country`` ("" where none)."""
    if country.upper() not in COUNTRIES_WITH_DEFAULTS:
        return ""
    with translation.override(language):
        return pgettext("invoice document", "No discount for early payment")


def recovery_indemnity_text(amount: Decimal, *, language: str | None) -> str:
    """The recovery indemnity's mention: 40 -> "Indemnité forfaitaire pour frais de recouvrement :
    40 €" in French, "Fixed indemnity for recovery costs: €40" in English."""
    # Decimal(str(...)): a tenant not read back from the database holds the field's default, 40.
    shown = money_text(Decimal(str(amount)), currency=RECOVERY_INDEMNITY_CURRENCY, language=language, whole=True)
    with translation.override(language):
        return pgettext("invoice document", "Fixed indemnity for recovery costs: %(amount)s") % {"amount": shown}


def legal_mentions(tenant: Tenant, *, language: str | None, business_buyer: bool = True) -> list[LegalMention]:
    """The mentions a document of ``tenant`` prints, in ``language``, in the order of the table
    above. The recovery indemnity is owed by business buyers only (``business_buyer``: the buyer
    has a VAT number); a mention with neither a text of the tenant's nor a default is left out."""
    country = seller_country(tenant)
    mentions: list[LegalMention] = []

    def add(code: str, own: str, default: str) -> None:
        if own.strip():
            mentions.append(LegalMention(subject_code=code, text=own.strip(), default=False))
        elif default:
            mentions.append(LegalMention(subject_code=code, text=default, default=True))

    add(LATE_PAYMENT_PENALTY, tenant.late_payment_penalty, default_late_payment_penalty(country, language=language))
    if business_buyer and country in COUNTRIES_WITH_DEFAULTS:
        mentions.append(
            LegalMention(
                subject_code=RECOVERY_INDEMNITY,
                text=recovery_indemnity_text(tenant.recovery_indemnity, language=language),
                default=tenant.recovery_indemnity == Decimal(40),
            )
        )
    add(
        EARLY_PAYMENT_DISCOUNT,
        tenant.early_payment_discount,
        default_early_payment_discount(country, language=language),
    )
    return mentions
