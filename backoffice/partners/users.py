"""The partner page's "Partner users" and "API keys" sections: who at the partner logs in to the
partner dashboard, with their role and last login, and the keys the partner's own systems call the
API with. Owners and finance admins invite someone, change a role, deactivate or reactivate a user,
send the invitation again, create a key (shown once) and revoke one.

The services are the API's (``partners.users``, ``tenancy.services.api_key_create`` with the scope
``partner``), which audit each change."""

import uuid
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from backoffice.access import WRITERS, current_actor, current_tenant, staff_view
from backoffice.partners.forms import PartnerKeyForm, PartnerUserInviteForm
from backoffice.partners.views import partner_or_404, partner_page_context, partner_sections
from billing_platform.errors import DomainError, InvalidInput
from customers.models import Partner
from partners.errors import PartnerUserEmailTaken
from partners.models import PartnerUser
from partners.users import (
    partner_user_get,
    partner_user_invitation_resend,
    partner_user_invite,
    partner_user_remove,
    partner_user_update,
)
from tenancy.models import ApiKey, ApiKeyScope
from tenancy.services import api_key_create, api_key_revoke

FIELD_ERRORS = {
    "invalid_email": gettext_lazy("Enter a valid email address."),
    "too_long": gettext_lazy("This value is too long."),
    "invalid_choice": gettext_lazy("Choose one of the roles."),
}


def _page(request: HttpRequest, partner: Partner, *, status: int = 200, **sections: Any) -> HttpResponse:
    context = partner_page_context(request, partner)
    context.update(partner_sections(tenant=current_tenant(request), partner=partner, writer=True, **sections))
    return render(request, "backoffice/partners/detail.html", context, status=status)


def _user(request: HttpRequest, partner: Partner, user_id: str) -> PartnerUser:
    try:
        return partner_user_get(tenant=current_tenant(request), partner=partner, user_id=user_id)
    except DomainError:
        raise Http404("No such partner user.") from None


def _back(partner: Partner, section: str = "partner-users") -> HttpResponse:
    return redirect(reverse("backoffice:partner-detail", args=[partner.code]) + "#" + section)


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


# --- partner users --------------------------------------------------------------------------------


@staff_view(WRITERS)
@require_POST
def partner_user_invite_view(request: HttpRequest, code: str) -> HttpResponse:
    tenant = current_tenant(request)
    partner = partner_or_404(tenant, code)
    form = PartnerUserInviteForm(request.POST)
    if form.is_valid():
        try:
            partner_user_invite(
                tenant=tenant,
                partner=partner,
                email=form.cleaned_data["email"],
                name=form.cleaned_data["name"],
                role=form.cleaned_data["role"],
                actor=current_actor(request),
                at=timezone.now(),
                base_url=_base_url(request),
            )
        except PartnerUserEmailTaken:
            form.add_error("email", _("This address is already a partner user (of this partner or another one)."))
        except InvalidInput as exc:
            for error in exc.errors:
                field = error.field if error.field in form.fields else None
                form.add_error(field, FIELD_ERRORS.get(error.code, error.message))
        else:
            messages.success(
                request, _("Invitation e-mailed to %(email)s.") % {"email": form.cleaned_data["email"].lower()}
            )
            return _back(partner)
    return _page(request, partner, invite_form=form, status=422)


@staff_view(WRITERS)
@require_POST
def partner_user_change_view(request: HttpRequest, code: str, user_id: str) -> HttpResponse:
    """One form per user row: ``role`` changes the role; ``active`` 0 deactivates (their sessions
    and pending invitation end), 1 reactivates."""
    tenant = current_tenant(request)
    partner = partner_or_404(tenant, code)
    user = _user(request, partner, user_id)
    actor, now = current_actor(request), timezone.now()
    active = request.POST.get("active")
    try:
        if active == "0":
            partner_user_remove(tenant=tenant, user=user, actor=actor, at=now)
            messages.success(
                request, _("%(email)s can no longer log in to the partner dashboard.") % {"email": user.email}
            )
        elif active == "1":
            partner_user_update(tenant=tenant, user=user, actor=actor, at=now, is_active=True)
            done = _("%(email)s can log in to the partner dashboard again.")
            messages.success(request, done % {"email": user.email})
        elif "role" in request.POST:
            partner_user_update(tenant=tenant, user=user, actor=actor, at=now, role=request.POST["role"])
            messages.success(request, _("Role of %(email)s changed.") % {"email": user.email})
    except InvalidInput:
        messages.error(request, _("Choose one of the roles."))
    except DomainError as exc:
        messages.error(request, exc.detail)
    return _back(partner)


@staff_view(WRITERS)
@require_POST
def partner_user_resend_view(request: HttpRequest, code: str, user_id: str) -> HttpResponse:
    tenant = current_tenant(request)
    partner = partner_or_404(tenant, code)
    user = _user(request, partner, user_id)
    try:
        partner_user_invitation_resend(
            tenant=tenant, user=user, actor=current_actor(request), at=timezone.now(), base_url=_base_url(request)
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, _("Invitation e-mailed to %(email)s.") % {"email": user.email})
    return _back(partner)


# --- the partner's API keys -----------------------------------------------------------------------


@staff_view(WRITERS)
@require_POST
def partner_key_create_view(request: HttpRequest, code: str) -> HttpResponse:
    """The key is on the page this once (never cached); afterwards only its prefix is shown."""
    tenant = current_tenant(request)
    partner = partner_or_404(tenant, code)
    form = PartnerKeyForm(request.POST)
    if form.is_valid():
        try:
            _key, new_key = api_key_create(
                tenant=tenant,
                name=form.cleaned_data["name"],
                scope=ApiKeyScope.PARTNER,
                actor=current_actor(request),
                at=timezone.now(),
                created_by=request.user,
                partner=partner,
            )
        except InvalidInput as exc:
            form.add_error(None, exc.detail)
        else:
            response = _page(request, partner, new_key=new_key)
            add_never_cache_headers(response)
            return response
    return _page(request, partner, key_form=form, status=422)


@staff_view(WRITERS)
@require_POST
def partner_key_revoke_view(request: HttpRequest, code: str, key_id: str) -> HttpResponse:
    tenant = current_tenant(request)
    partner = partner_or_404(tenant, code)
    try:
        known = ApiKey.objects.filter(tenant=tenant, partner=partner, pk=uuid.UUID(key_id)).exists()
    except ValueError:
        known = False
    if not known:
        raise Http404("No such API key.")
    try:
        key = api_key_revoke(tenant=tenant, key_id=key_id, actor=current_actor(request), at=timezone.now())
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, _("Key %(name)s revoked.") % {"name": key.name})
    return _back(partner, "partner-keys")
