"""The import-linter contract type ``private_names``: no app reaches into another app's private names.

A name is private when it starts with one underscore (``_credited_per_line``, a module
``invoicing._numbering``); dunder names such as ``__version__`` are not. Inside its app a private
name is used freely. Another app (another top-level package) goes through what the owner offers in
its ``services.py``, ``selectors.py`` and the dataclasses they return, so that the owner can change
its internals without breaking a caller it cannot see. The contract finds:

- ``from invoicing.services import _credited_per_line`` (a private name imported);
- ``import invoicing._numbering`` or ``from invoicing._numbering import x`` (a private module);
- ``services._credited_per_line(...)`` where ``services`` is bound to another app's module.

Imports inside functions and under ``if TYPE_CHECKING:`` count too. Private attributes of classes
and instances (``Invoice._meta``) are out of its reach: only names read straight off a module are.

pyproject.toml registers it under ``[tool.importlinter]``: ``contract_types``; ``make lint`` runs
it next to the layers contract. Option ``apps``: the top-level packages whose private names are
protected from each other (default: the ``root_packages``).
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def is_private(name: str) -> bool:
    """``_x`` is private; ``__x__`` (a dunder) is not."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _has_private_part(dotted: str) -> bool:
    return any(is_private(part) for part in dotted.split("."))


def _absolute(node: ast.ImportFrom, *, module: str, is_package: bool) -> str:
    """The module a ``from ... import`` statement reads from, relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = module if is_package else module.rpartition(".")[0]
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - (node.level - 1)])
    return f"{base}.{node.module}" if node.module else base


def _attribute_chain(node: ast.Attribute) -> list[str] | None:
    """``a.b.c`` -> ["a", "b", "c"]; None when the chain does not start from a plain name."""
    names: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        names.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    names.append(current.id)
    return names[::-1]


def private_references(
    source: str, *, module: str, is_package: bool, is_module: Callable[[str], bool]
) -> list[tuple[int, str]]:
    """(line, dotted name) of each private name the module imports, or reads off a module it imported.

    ``is_module`` tells a module from any other name (``invoicing.services`` is one,
    ``invoicing.services.invoice_void`` is not). Every private name is returned, the module's own
    app's included: the contract keeps the other apps' ones. Bindings are read for the whole file,
    whatever the scope: a guard, not a type checker.
    """
    tree = ast.parse(source)
    found: set[tuple[int, str]] = set()
    modules_by_name: dict[str, str] = {}  # local name -> the module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _has_private_part(alias.name):
                    found.add((alias.lineno, alias.name))
                if alias.asname:
                    modules_by_name[alias.asname] = alias.name
                else:
                    first = alias.name.partition(".")[0]
                    modules_by_name[first] = first
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module=module, is_package=is_package)
            for alias in node.names:
                target = base if alias.name == "*" else f"{base}.{alias.name}"
                if _has_private_part(target):
                    found.add((alias.lineno, target))
                if alias.name != "*" and is_module(target):
                    modules_by_name[alias.asname or alias.name] = target
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        chain = _attribute_chain(node)
        if chain is None or chain[0] not in modules_by_name:
            continue
        current = modules_by_name[chain[0]]
        for name in chain[1:]:
            if not is_module(current):
                break  # an attribute of a class or an object: not a module's name
            if is_private(name):
                found.add((node.lineno, f"{current}.{name}"))
                break
            current = f"{current}.{name}"
    return sorted(found)


@dataclass(frozen=True, order=True)
class PrivateReference:
    importer: str
    line: int
    target: str


def _source_file(module: str) -> tuple[Path, bool]:
    """The file of a module and whether it is a package, found from its top-level package's folder."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{top} is not a package")
    folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    if (folder / "__init__.py").is_file():
        return folder / "__init__.py", True
    return folder.with_suffix(".py"), False


def references_across_apps(graph: grimp.ImportGraph, apps: set[str]) -> list[PrivateReference]:
    modules = graph.modules
    references: list[PrivateReference] = []
    for module in sorted(modules):
        app = module.partition(".")[0]
        if app not in apps:
            continue
        path, is_package = _source_file(module)
        for line, target in private_references(
            path.read_text(encoding="utf-8"), module=module, is_package=is_package, is_module=modules.__contains__
        ):
            owner = target.partition(".")[0]
            if owner != app and owner in apps:
                references.append(PrivateReference(importer=module, line=line, target=target))
    return references


class PrivateNamesContract(Contract):
    """Apps use each other's public names only (see the module docstring)."""

    type_name = "private_names"

    apps = fields.ListField(subfield=fields.StringField(), required=False)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        apps = set(cast("list[str] | None", self.apps) or self.session_options["root_packages"])
        references = references_across_apps(graph, apps)
        output.verbose_print(verbose, f"{len(references)} private names used across apps.")
        return ContractCheck(kept=not references, metadata={"references": references})

    def render_broken_contract(self, check: ContractCheck) -> None:
        output.print_error("Private names may only be used inside the app that defines them:", bold=False)
        output.new_line()
        references: list[Any] = check.metadata["references"]
        for reference in references:
            output.print_error(f"- {reference.importer} -> {reference.target} (l.{reference.line})", bold=False)
            output.new_line()
