"""French is complete: every message the templates and the code mark for translation has its French
in locale/fr/LC_MESSAGES/django.po, translated and not fuzzy. The messages are found as makemessages
finds them (Django's own template-to-gettext conversion for templates, the syntax tree for Python),
without GNU gettext, so the test runs on a machine with Python only."""

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.utils.translation.template import templatize

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "locale" / "fr" / "LC_MESSAGES" / "django.po"
SKIPPED_DIRS = {".venv", "node_modules", "var", "staticfiles", "migrations", "tests", "bench", "scripts", ".git"}
# gettext's functions: how many leading arguments are the context and the message(s).
FUNCTIONS = {
    "_": ("msgid",),
    "gettext": ("msgid",),
    "gettext_lazy": ("msgid",),
    "gettext_noop": ("msgid",),
    "ngettext": ("msgid", "plural"),
    "ngettext_lazy": ("msgid", "plural"),
    "pgettext": ("context", "msgid"),
    "pgettext_lazy": ("context", "msgid"),
    "npgettext": ("context", "msgid", "plural"),
    "npgettext_lazy": ("context", "msgid", "plural"),
}

# In templatize's output: a call, then its string arguments (Python literals).
CALL = re.compile(r"\b(%s)\(" % "|".join(FUNCTIONS))
ARGUMENT = re.compile(r"""\s*(u?'(?:[^'\\\n]|\\.)*'|u?"(?:[^"\\\n]|\\.)*")\s*,?""")


@dataclass
class Entry:
    msgctxt: str | None = None
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: list[str] = field(default_factory=list)
    fuzzy: bool = False


def _unquote(text: str) -> str:
    return ast.literal_eval(text) if text else ""


def po_entries(path: Path) -> dict[tuple[str | None, str], Entry]:
    """The file's live entries (obsolete ``#~`` ones left out), by (context, msgid)."""
    entries: dict[tuple[str | None, str], Entry] = {}
    entry, current = Entry(), ""

    def flush() -> None:
        nonlocal entry
        if entry.msgid or entry.msgstr:
            entries[(entry.msgctxt, entry.msgid)] = entry
        entry = Entry()

    for raw in path.read_text(encoding="utf-8").splitlines() + [""]:
        line = raw.strip()
        if not line:
            flush()
            current = ""
        elif line.startswith("#,"):
            entry.fuzzy = entry.fuzzy or "fuzzy" in line
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            value = _unquote(line)
            if current == "msgctxt":
                entry.msgctxt = (entry.msgctxt or "") + value
            elif current == "msgid":
                entry.msgid += value
            elif current == "msgid_plural":
                entry.msgid_plural = (entry.msgid_plural or "") + value
            else:
                entry.msgstr[-1] += value
        else:
            keyword, _, value = line.partition(" ")
            if keyword == "msgctxt":
                entry.msgctxt, current = _unquote(value), "msgctxt"
            elif keyword == "msgid":
                if current.startswith("msgstr"):  # a new entry without a blank line between
                    flush()
                entry.msgid, current = _unquote(value), "msgid"
            elif keyword == "msgid_plural":
                entry.msgid_plural, current = _unquote(value), "msgid_plural"
            elif keyword.startswith("msgstr"):
                entry.msgstr.append(_unquote(value))
                current = "msgstr"
    return entries


@dataclass(frozen=True)
class Message:
    context: str | None
    msgid: str
    plural: str | None
    where: str


def _from_calls(calls: list[tuple[str, list[str]]], where: str) -> list[Message]:
    found = []
    for name, args in calls:
        roles = FUNCTIONS[name]
        if len(args) < len(roles):
            continue
        values = dict(zip(roles, args, strict=False))
        found.append(Message(values.get("context"), values["msgid"], values.get("plural"), where))
    return found


def python_messages(path: Path) -> list[Message]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        if name not in FUNCTIONS:
            continue
        args = []
        for arg in node.args:
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                break
            args.append(arg.value)
        calls.append((name, args))
    return _from_calls(calls, str(path.relative_to(ROOT)))


def template_messages(path: Path) -> list[Message]:
    """Django's conversion of a template into gettext calls (what makemessages hands xgettext)."""
    code = templatize(path.read_text(encoding="utf-8"), origin=str(path))
    calls = []
    for call in CALL.finditer(code):
        args, position = [], call.end()
        while argument := ARGUMENT.match(code, position):
            args.append(ast.literal_eval(argument.group(1)))
            position = argument.end()
        calls.append((call.group(1), args))
    return _from_calls(calls, str(path.relative_to(ROOT)))


def used_messages() -> list[Message]:
    found: list[Message] = []
    for path in sorted(ROOT.rglob("*")):
        if SKIPPED_DIRS & set(path.relative_to(ROOT).parts[:-1]) or not path.is_file():
            continue
        if path.suffix == ".py" and not path.name.startswith("test"):
            found += python_messages(path)
        elif path.suffix in (".html", ".txt") and "templates" in path.parts:
            found += template_messages(path)
    return found


def test_every_message_in_use_has_its_french() -> None:
    entries = po_entries(PO)
    problems = []
    for message in used_messages():
        entry = entries.get((message.context, message.msgid))
        if entry is None:
            problems.append("%s: missing: %r" % (message.where, message.msgid))
        elif entry.fuzzy:
            problems.append("%s: fuzzy: %r" % (message.where, message.msgid))
        elif not entry.msgstr or not all(entry.msgstr):
            problems.append("%s: untranslated: %r" % (message.where, message.msgid))
    assert not problems, "%d messages without French:\n%s" % (len(problems), "\n".join(sorted(set(problems))))


def test_the_check_finds_messages_in_templates_and_code() -> None:
    found = {m.msgid for m in used_messages()}
    # a template's translate tag, a blocktranslate with a variable, a view's message, a model's choice
    assert "Skip to content" in found
    assert "MRR at the end of %(month)s" in found
    assert "Recognition run of %(month)s started." in found
    assert "Draft" in found
    entries = po_entries(PO)
    assert entries[(None, "Customers")].msgstr == ["Clients"]
