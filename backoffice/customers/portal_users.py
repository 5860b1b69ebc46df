"""The customer page's "Portal users" section: who at the customer logs in to the portal, with their
role and last login; writers invite someone, change a role, deactivate or reactivate a user, or send
the invitation again. The services are the API's (``customers.portal_users``), which audit each change."""

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from backoffice.access import WRITERS, current_actor, current_tenant, staff_view
from billing_platform.errors import DomainError, InvalidInput
from customers.errors import PortalUserEmailTaken
from customers.models import Customer, PortalRole, PortalUser
from customers.portal_users import (
    portal_user_get,
    portal_user_invitation_resend,
    portal_user_invite,
    portal_user_list,
    portal_user_update,
)
from customers.selectors import customer_get
from tenancy.models import Tenant

FIELD_ERRORS = {
    "invalid_email": gettext_lazy("Enter a valid email address."),
    "too_long": gettext_lazy("This value is too long."),
    "invalid_choice": gettext_lazy("Choose one of the roles."),
}


class PortalInviteForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("E-mail address"), max_length=254)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200, required=False)
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=PortalRole.choices, initial=PortalRole.ADMIN)


def portal_users_section(*, tenant: Tenant, customer: Customer, form: PortalInviteForm | None = None) -> dict[str, Any]:
    """The section's context on the customer page."""
    return {
        "portal_users": list(portal_user_list(tenant=tenant, customer=customer)),
        "portal_invite_form": form or PortalInviteForm(),
        "portal_roles": PortalRole.choices,
    }


def _customer(request: HttpRequest, external_id: str) -> Customer:
    try:
        return customer_get(tenant=current_tenant(request), external_id=external_id)
    except DomainError:
        raise Http404("No such customer.") from None


def _user(request: HttpRequest, customer: Customer, user_id: str) -> PortalUser:
    try:
        user = portal_user_get(tenant=current_tenant(request), customer=customer, user_id=user_id)
    except DomainError:
        raise Http404("No such portal user.") from None
    user.customer = customer
    return user


def _back(customer: Customer) -> HttpResponse:
    return redirect(reverse("backoffice:customer-detail", args=[customer.external_id]) + "#portal-users")


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


@staff_view(WRITERS)
@require_POST
def portal_user_invite_view(request: HttpRequest, external_id: str) -> HttpResponse:
    customer = _customer(request, external_id)
    form = PortalInviteForm(request.POST)
    if form.is_valid():
        try:
            portal_user_invite(
                tenant=current_tenant(request),
                customer=customer,
                email=form.cleaned_data["email"],
                name=form.cleaned_data["name"],
                role=form.cleaned_data["role"],
                actor=current_actor(request),
                at=timezone.now(),
                base_url=_base_url(request),
            )
        except PortalUserEmailTaken:
            form.add_error("email", _("This address is already a portal user (of this customer or another one)."))
        except InvalidInput as exc:
            for error in exc.errors:
                field = error.field if error.field in form.fields else None
                form.add_error(field, FIELD_ERRORS.get(error.code, error.message))
        else:
            messages.success(
                request, _("Invitation e-mailed to %(email)s.") % {"email": form.cleaned_data["email"].lower()}
            )
            return _back(customer)
    # The customer page again, with the form's errors in its section.
    from backoffice.customers.views import customer_detail_page

    return customer_detail_page(request, customer, portal_invite_form=form, status=400)


@staff_view(WRITERS)
@require_POST
def portal_user_change_view(request: HttpRequest, external_id: str, user_id: str) -> HttpResponse:
    """One form per user row: ``role`` changes the role; ``active`` 0/1 deactivates or reactivates."""
    customer = _customer(request, external_id)
    user = _user(request, customer, user_id)
    changes: dict[str, Any] = {}
    if "role" in request.POST:
        changes["role"] = request.POST["role"]
    if request.POST.get("active") in ("0", "1"):
        changes["is_active"] = request.POST["active"] == "1"
    try:
        portal_user_update(
            tenant=current_tenant(request), user=user, actor=current_actor(request), at=timezone.now(), **changes
        )
    except InvalidInput:
        messages.error(request, _("Choose one of the roles."))
    else:
        if changes.get("is_active") is False:
            messages.success(request, _("%(email)s can no longer log in to the portal.") % {"email": user.email})
        elif changes.get("is_active") is True:
            messages.success(request, _("%(email)s can log in to the portal again.") % {"email": user.email})
        else:
            messages.success(request, _("Role of %(email)s changed.") % {"email": user.email})
    return _back(customer)


@staff_view(WRITERS)
@require_POST
def portal_user_resend_view(request: HttpRequest, external_id: str, user_id: str) -> HttpResponse:
    customer = _customer(request, external_id)
    user = _user(request, customer, user_id)
    portal_user_invitation_resend(
        tenant=current_tenant(request),
        user=user,
        actor=current_actor(request),
        at=timezone.now(),
        base_url=_base_url(request),
    )
    messages.success(request, _("Invitation e-mailed to %(email)s.") % {"email": user.email})
    return _back(customer)
