"""The users page, for a partner's admins: who at the partner may log into the dashboard, with which
role; invite a colleague, change a role, remove someone. The services of the back-office and the API
(``partners.users``), which audit every change."""

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing_platform.errors import DomainError, InvalidInput
from partners.dashboard.access import ADMINS, current_partner, partner_render, partner_view
from partners.errors import PartnerUserEmailTaken, PartnerUserSelfChange
from partners.models import PartnerRole, PartnerUser
from partners.users import (
    partner_user_get,
    partner_user_invite,
    partner_user_list,
    partner_user_remove,
    partner_user_update,
)

# The services speak English (for the API); the page says it in the reader's language.
FIELD_ERRORS = {
    "invalid_email": gettext_lazy("Enter a valid email address."),
    "too_long": gettext_lazy("This value is too long."),
    "invalid_choice": gettext_lazy("Choose one of the roles."),
}


class InviteForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("E-mail address"), max_length=254)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200, required=False)
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=PartnerRole.choices, initial=PartnerRole.SALES)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=PartnerRole.choices)


def _page(request: HttpRequest, form: InviteForm | None = None, status: int = 200) -> HttpResponse:
    ctx = current_partner(request)
    context: dict[str, Any] = {
        "users": list(partner_user_list(tenant=ctx.tenant, partner=ctx.partner)),
        "form": form or InviteForm(),
        "roles": PartnerRole.choices,
        "me": ctx.user.pk,
    }
    return partner_render(request, "partners/dashboard/users.html", context, status=status)


@partner_view(ADMINS)
def users(request: HttpRequest) -> HttpResponse:
    return _page(request)


@partner_view(ADMINS)
def invite(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return redirect("partners:users")
    ctx = current_partner(request)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            partner_user_invite(
                tenant=ctx.tenant,
                partner=ctx.partner,
                email=form.cleaned_data["email"],
                name=form.cleaned_data["name"],
                role=form.cleaned_data["role"],
                actor=ctx.actor,
                at=timezone.now(),
                base_url=request.build_absolute_uri("/").rstrip("/"),
            )
        except PartnerUserEmailTaken:
            form.add_error("email", _("This address already has a partner login with us."))
        except InvalidInput as exc:
            for error in exc.errors:
                field = error.field if error.field in form.fields else None
                form.add_error(field, FIELD_ERRORS.get(error.code, error.message))
        else:
            messages.success(
                request, _("Invitation sent to %(email)s.") % {"email": form.cleaned_data["email"].lower()}
            )
            return redirect("partners:users")
    return _page(request, form, status=400)


def _user(request: HttpRequest, user_id: Any) -> PartnerUser:
    ctx = current_partner(request)
    try:
        return partner_user_get(tenant=ctx.tenant, partner=ctx.partner, user_id=str(user_id))
    except DomainError:
        raise Http404("No such user.") from None


@partner_view(ADMINS)
def role_change(request: HttpRequest, user_id: Any) -> HttpResponse:
    # Looked up first: another partner's user is not found, whatever the method.
    user = _user(request, user_id)
    if request.method != "POST":
        return redirect("partners:users")
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose one of the roles."))
        return redirect("partners:users")
    ctx = current_partner(request)
    try:
        partner_user_update(
            tenant=ctx.tenant, user=user, role=form.cleaned_data["role"], actor=ctx.actor, at=timezone.now()
        )
    except PartnerUserSelfChange:
        messages.error(request, _("You cannot change your own role: ask another admin of your partner account."))
    else:
        messages.success(request, _("Role of %(email)s changed.") % {"email": user.email})
    return redirect("partners:users")


@partner_view(ADMINS)
def remove(request: HttpRequest, user_id: Any) -> HttpResponse:
    user = _user(request, user_id)
    if request.method != "POST":
        return redirect("partners:users")
    ctx = current_partner(request)
    try:
        partner_user_remove(tenant=ctx.tenant, user=user, actor=ctx.actor, at=timezone.now())
    except PartnerUserSelfChange:
        messages.error(request, _("You cannot remove yourself: ask another admin of your partner account."))
    else:
        messages.success(request, _("%(email)s can no longer log in.") % {"email": user.email})
    return redirect("partners:users")
