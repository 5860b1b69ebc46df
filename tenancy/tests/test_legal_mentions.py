"""tenancy.legal_mentions: the mentions a tenant's invoices print, its own texts or its country's
defaults, in the invoice's language, with the subject codes of their Factur-X notes."""

from decimal import Decimal

import pytest
from django.test import override_settings

from tenancy.legal_mentions import (
    LegalMention,
    PaymentInstructions,
    legal_mentions,
    payment_instructions,
    seller_country,
)
from tenancy.models import Tenant

pytestmark = pytest.mark.django_db

NBSP = "\xa0"


def test_a_french_seller_prints_the_three_default_mentions_in_french_and_in_english(tenant: Tenant) -> None:
    # given: a tenant in France that left the texts blank (recovery indemnity 40 EUR by default)
    tenant.country = "FR"
    # then
    assert legal_mentions(tenant, language="fr") == [
        LegalMention("PMD", "Pénalités de retard : trois fois le taux d'intérêt légal", default=True),
        LegalMention("PMT", f"Indemnité forfaitaire pour frais de recouvrement : 40{NBSP}€", default=True),
        LegalMention("AAB", "Pas d'escompte pour paiement anticipé", default=True),
    ]
    assert legal_mentions(tenant, language="en") == [
        LegalMention("PMD", "Late-payment penalty: three times the French legal interest rate", default=True),
        LegalMention("PMT", "Fixed indemnity for recovery costs: €40", default=True),
        LegalMention("AAB", "No discount for early payment", default=True),
    ]


def test_the_recovery_indemnity_is_for_business_buyers_only(tenant: Tenant) -> None:
    tenant.country = "FR"
    codes = [m.subject_code for m in legal_mentions(tenant, language="fr", business_buyer=False)]
    assert codes == ["PMD", "AAB"]


def test_the_tenants_own_texts_replace_the_defaults_as_typed(tenant: Tenant) -> None:
    tenant.country = "FR"
    tenant.late_payment_penalty = "Pénalités : 12 % l'an"
    tenant.early_payment_discount = "Escompte de 2 % pour paiement sous 10 jours"
    tenant.recovery_indemnity = Decimal("50.00")
    assert legal_mentions(tenant, language="en") == [
        LegalMention("PMD", "Pénalités : 12 % l'an", default=False),
        LegalMention("PMT", "Fixed indemnity for recovery costs: €50", default=False),
        LegalMention("AAB", "Escompte de 2 % pour paiement sous 10 jours", default=False),
    ]


def test_a_seller_elsewhere_has_no_defaults_and_prints_only_its_own_texts(tenant: Tenant) -> None:
    tenant.country = "DE"
    assert legal_mentions(tenant, language="en") == []
    tenant.late_payment_penalty = "Verzugszinsen: 9 Prozentpunkte über dem Basiszinssatz"
    assert legal_mentions(tenant, language="en") == [
        LegalMention("PMD", "Verzugszinsen: 9 Prozentpunkte über dem Basiszinssatz", default=False)
    ]


@override_settings(TRIPOD={"SELLER_COUNTRY": "FR"})
def test_a_tenant_without_a_country_is_in_the_settings_country(tenant: Tenant) -> None:
    tenant.country = ""
    assert seller_country(tenant) == "FR"
    assert len(legal_mentions(tenant, language="fr")) == 3


def test_payment_instructions(tenant: Tenant) -> None:
    tenant.iban, tenant.bic, tenant.payment_terms_days = "FR1420041010050500013M02606", "BNPAFRPPXXX", 45
    assert payment_instructions(tenant) == PaymentInstructions(
        iban="FR1420041010050500013M02606", bic="BNPAFRPPXXX", sepa_creditor_id="", payment_terms_days=45
    )
