"""``{% audit_lines entries as lines %}``: audit-log entries in words (``backoffice.audit``), for the
pages that list them (the audit log, the dashboard, a customer's history, settings, team)."""

from typing import Any

from django import template

from backoffice.audit import AuditLine
from backoffice.audit import audit_lines as present

register = template.Library()


@register.simple_tag
def audit_lines(entries: Any) -> list[AuditLine]:
    return present(entries)
