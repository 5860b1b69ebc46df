"""Saved filters: a staff user's named filters of the back-office lists, per tenant. The query
string is stored as given; which parameters a list takes, and whether their values are valid, is the
list's own filter form's business (``backoffice.saved_filters``)."""

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from billing_platform.errors import NotFound, invalid
from tenancy.models import SavedFilter, Tenant

NAME_MAX_LENGTH = 80
QUERY_MAX_LENGTH = 2000
# How many filters a user keeps per list: the menu stays a menu.
PER_LIST = 30

__all__ = ["saved_filter_delete", "saved_filter_get", "saved_filter_list", "saved_filter_save"]


def saved_filter_list(*, tenant: Tenant, user: Any, list_name: str) -> QuerySet[SavedFilter]:
    return SavedFilter.objects.filter(tenant=tenant, user=user, list=list_name).order_by("name", "pk")


def saved_filter_get(*, tenant: Tenant, user: Any, pk: Any) -> SavedFilter:
    """The user's filter ``pk`` in ``tenant``; another user's or another tenant's is not found."""
    try:
        found = SavedFilter.objects.filter(tenant=tenant, user=user, pk=int(pk)).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise NotFound("No such saved filter.")
    return found


def saved_filter_save(*, tenant: Tenant, user: Any, list_name: str, name: str, query: str) -> SavedFilter:
    """Save ``query`` under ``name``; a filter of the same name on the list is replaced."""
    name = " ".join(name.split())
    if not name:
        raise invalid("name", "required", "Give the filter a name.")
    if len(name) > NAME_MAX_LENGTH:
        raise invalid("name", "too_long", "The name has at most %d characters." % NAME_MAX_LENGTH)
    if len(query) > QUERY_MAX_LENGTH:
        raise invalid("query", "too_long", "The filter has at most %d characters." % QUERY_MAX_LENGTH)
    with transaction.atomic():
        existing = SavedFilter.objects.select_for_update().filter(tenant=tenant, user=user, list=list_name, name=name)
        updated = existing.first()
        if updated is not None:
            updated.query = query
            updated.save(update_fields=["query"])
            return updated
        if saved_filter_list(tenant=tenant, user=user, list_name=list_name).count() >= PER_LIST:
            raise invalid("name", "too_many", "Keep at most %d saved filters per list: delete one first." % PER_LIST)
        try:
            with transaction.atomic():
                return SavedFilter.objects.create(tenant=tenant, user=user, list=list_name, name=name, query=query)
        except IntegrityError:  # saved at the same moment by another request: replace it
            SavedFilter.objects.filter(tenant=tenant, user=user, list=list_name, name=name).update(query=query)
            return SavedFilter.objects.get(tenant=tenant, user=user, list=list_name, name=name)


def saved_filter_delete(*, tenant: Tenant, user: Any, pk: Any) -> SavedFilter:
    found = saved_filter_get(tenant=tenant, user=user, pk=pk)
    found.delete()
    return found
