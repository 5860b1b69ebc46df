"""The private-names contract (scripts/import_contracts.py) that `make lint` runs with the layers contract:
what it finds in a module, and lint-imports failing on a tree that breaks it and passing a clean one."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scripts.import_contracts import is_private, private_references

ROOT = Path(__file__).resolve().parent.parent
MODULES = {"lower", "lower.services", "lower._numbering", "upper", "upper.views"}


def found(source: str, module: str = "upper.views", is_package: bool = False) -> list[tuple[int, str]]:
    return private_references(
        textwrap.dedent(source), module=module, is_package=is_package, is_module=MODULES.__contains__
    )


def test_a_private_name_is_one_underscore_not_a_dunder() -> None:
    assert [is_private(name) for name in ("_credited", "__version__", "__init__", "credited", "__mangled")] == [
        True,
        False,
        False,
        False,
        True,
    ]


def test_private_names_imported_by_name_by_module_or_read_off_a_module_are_found() -> None:
    source = """\
        from lower.services import (
            helper,
            _helper,
        )
        import lower._numbering
        from lower import services as svc
        import lower.services


        def view():
            from lower._numbering import number_format

            return svc._cache, lower.services._table, svc.helper
    """
    assert found(source) == [
        (3, "lower.services._helper"),
        (5, "lower._numbering"),
        (11, "lower._numbering.number_format"),
        (13, "lower.services._cache"),
        (13, "lower.services._table"),
    ]


def test_public_names_dunders_and_private_attributes_of_classes_are_not_private_names() -> None:
    source = """\
        from lower import __version__
        from lower.services import Invoice, helper
        from django.utils.translation import gettext as _

        Invoice._meta.get_fields()
        helper._private_attribute_of_a_function
    """
    assert found(source) == []


def test_relative_imports_are_resolved_against_the_importing_module() -> None:
    assert found("from ._numbering import number_format\n", module="lower.services") == [
        (1, "lower._numbering.number_format")
    ]
    assert found("from . import _numbering\n", module="lower", is_package=True) == [(1, "lower._numbering")]


def write_tree(root: Path, views: str) -> None:
    files = {
        "pyproject.toml": """\
            [tool.importlinter]
            root_packages = ["lower", "upper"]
            contract_types = ["private_names: scripts.import_contracts.PrivateNamesContract"]

            [[tool.importlinter.contracts]]
            id = "private-names"
            name = "Apps use only each other's public names"
            type = "private_names"
        """,
        "lower/__init__.py": "",
        "lower/services.py": """\
            def _helper() -> int:
                return 1


            def helper() -> int:
                return _helper()
        """,
        "upper/__init__.py": "",
        "upper/views.py": views,
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    command = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run(
        [sys.executable, "-c", command, "--no-logo", "--no-cache"],
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("views", "kept"),
    [
        ("from lower.services import helper\n", True),
        ("from lower.services import (\n    helper,\n    _helper,\n)\n", False),
    ],
    ids=["clean", "private-import"],
)
def test_lint_imports_fails_on_another_apps_private_name_and_passes_a_clean_tree(
    tmp_path: Path, views: str, kept: bool
) -> None:
    # given
    write_tree(tmp_path, views)
    # when
    result = lint_imports(tmp_path)
    # then
    assert result.returncode == (0 if kept else 1), result.stdout + result.stderr
    if kept:
        assert "Apps use only each other's public names KEPT" in result.stdout
    else:
        assert "Apps use only each other's public names BROKEN" in result.stdout
        assert "- upper.views -> lower.services._helper (l.3)" in result.stdout
