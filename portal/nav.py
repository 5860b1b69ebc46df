"""The portal's menu: an entry appears once its page exists (its url name resolves) and the user's
role may open it."""

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from portal.access import ADMINS, BILLING

# (url name, label, roles allowed or None for everyone)
ENTRIES: list[tuple[str, Promise, frozenset[str] | None]] = [
    ("overview", _("Overview"), None),
    ("devices", _("Devices"), None),
    ("usage", _("Usage"), None),
    ("invoices", _("Invoices"), None),
    ("payment-methods", _("Payment methods"), BILLING),
    ("plan", _("Plan"), None),
    ("shop", _("Shop"), BILLING),
    ("support", _("Support"), None),
    ("profile", _("Profile"), None),
    ("users", _("Portal users"), ADMINS),
]


def portal_nav(request: HttpRequest) -> dict[str, Any]:
    """The template context of every portal page: the menu, with the current page marked."""
    portal = getattr(request, "portal", None)
    if portal is None:
        return {}
    current = getattr(getattr(request, "resolver_match", None), "url_name", "") or ""
    entries = []
    for name, label, roles in ENTRIES:
        if roles is not None and portal.role not in roles:
            continue
        try:
            url = reverse("portal:" + name)
        except NoReverseMatch:
            continue
        stems = (name, name.removesuffix("s"))
        is_current = current in stems or current.startswith(tuple(stem + "-" for stem in stems))
        entries.append({"url": url, "label": label, "current": is_current})
    return {"portal": portal, "portal_nav": entries}
