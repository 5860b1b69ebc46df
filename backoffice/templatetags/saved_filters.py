"""``{% saved_filters "invoices" %}``: the saved-filters bar of a list (backoffice.saved_filters)."""

from typing import Any

from django import template

from backoffice.saved_filters import saved_filters_menu

register = template.Library()


@register.inclusion_tag("backoffice/_saved_filters.html", takes_context=True)
def saved_filters(context: template.Context, list_name: str) -> dict[str, Any]:
    return {**saved_filters_menu(context["request"], list_name), "csrf_token": context.get("csrf_token")}
