"""The tax decision (specs/taxes.md) as a table of cases: seller's country, buyer's country and VAT
number, what the line sells and its product tax category give the EN 16931 category, whether a rate
of the table applies (the buyer country's) and the exemption reason code."""

import pytest

from catalog.vat import exemption_reason, tax_decision, tax_parties, valid_eu_vat_number

DE_VAT = "DE136695976"  # a valid German VAT number
FR_VAT = "FR40303265045"


@pytest.mark.parametrize(
    ("seller", "buyer", "tax_id", "line_type", "tax_category", "expected"),
    [
        # domestic: the seller's own rates by the product's category
        ("FR", "FR", FR_VAT, "hardware", "standard", ("S", True, "")),
        ("FR", "FR", "", "service", "reduced", ("S", True, "")),
        ("FR", "FR", "", "fee", "zero", ("Z", True, "")),
        ("FR", "FR", "", "usage", "exempt", ("E", True, "")),
        # another EU country, B2B: intra-community supply of goods, reverse charge of services
        ("FR", "DE", DE_VAT, "hardware", "standard", ("K", False, "VATEX-EU-IC")),
        ("FR", "DE", DE_VAT, "service", "standard", ("AE", False, "VATEX-EU-AE")),
        ("FR", "DE", DE_VAT, "usage", "reduced", ("AE", False, "VATEX-EU-AE")),
        ("FR", "DE", DE_VAT, "fee", "standard", ("AE", False, "VATEX-EU-AE")),
        ("FR", "DE", DE_VAT, "credit", "standard", ("AE", False, "VATEX-EU-AE")),
        # another EU country, B2C (OSS): the buyer country's rates
        ("FR", "DE", "", "hardware", "standard", ("S", True, "")),
        ("FR", "DE", "", "service", "zero", ("Z", True, "")),
        # a number that is not a valid EU VAT number counts as none
        ("FR", "DE", "DE136695977", "service", "standard", ("S", True, "")),
        # outside the EU: export of goods; services not subject to VAT
        ("FR", "US", "", "hardware", "standard", ("G", False, "VATEX-EU-G")),
        ("FR", "US", "", "service", "standard", ("O", False, "VATEX-EU-O")),
        ("FR", "CH", "CHE123456789", "usage", "standard", ("O", False, "VATEX-EU-O")),
        # a seller outside the EU: the buyer country's table, whoever the buyer is
        ("US", "US", "", "service", "standard", ("S", True, "")),
        ("US", "DE", DE_VAT, "hardware", "standard", ("S", True, "")),
        ("GB", "FR", FR_VAT, "service", "exempt", ("E", True, "")),
        # Greece: ISO GR, VAT prefix EL
        ("GR", "GR", "", "service", "standard", ("S", True, "")),
    ],
)
def test_the_tax_decision(
    seller: str, buyer: str, tax_id: str, line_type: str, tax_category: str, expected: tuple[str, bool, str]
) -> None:
    decision = tax_decision(tax_parties(seller_country=seller, buyer_country=buyer, buyer_tax_id=tax_id), [line_type])
    treatment = decision.treatment(line_type=line_type, tax_category=tax_category)
    assert (treatment.vat_category, treatment.rated, treatment.exemption_reason_code) == expected
    assert decision.rate_country == buyer


def test_services_exported_with_goods_are_g_since_o_stands_alone() -> None:
    # EN 16931: a document with an O breakdown has no other breakdown (BR-O-11 to BR-O-14)
    decision = tax_decision(tax_parties(seller_country="FR", buyer_country="US"), ["hardware", "service"])
    assert decision.vat_category(line_type="service", tax_category="standard") == "G"
    assert decision.exemption_reason("G", language="en") == (
        "Export outside the EU: goods exempt from VAT (Article 146 of Directive 2006/112/EC), services not "
        "subject to VAT in the EU (Article 44 of Directive 2006/112/EC)"
    )


def test_mentions_are_in_the_documents_language_and_s_and_z_have_none() -> None:
    assert exemption_reason("AE", language="fr") == (
        "Autoliquidation\xa0: TVA due par le preneur (article 196 de la directive 2006/112/CE)"
    )
    assert exemption_reason("K", language="en") == (
        "Intra-community supply of goods, exempt from VAT (Article 138 of Directive 2006/112/EC)"
    )
    assert exemption_reason("E", language="fr") == "Exonéré de TVA"
    assert (exemption_reason("S", language="en"), exemption_reason("Z", language="fr")) == ("", "")


def test_a_vat_number_is_read_with_or_without_its_prefix() -> None:
    assert valid_eu_vat_number("136695976", "DE") == DE_VAT
    assert valid_eu_vat_number(" de 136695976 ", "DE") == DE_VAT
    assert valid_eu_vat_number("094259216", "GR") == "EL094259216"
    assert valid_eu_vat_number("123", "DE") == ""
    assert valid_eu_vat_number("CHE123456789", "CH") == ""
