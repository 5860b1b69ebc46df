"""The team page (Settings → Team) and the invitation link.

Finance roles see the team; owners invite staff by e-mail with a role, change roles, remove
members, and set the tenant's two-factor requirement (a section of the settings page). An invitee
opens the e-mailed link, chooses a password (or logs in with the login they have) and joins.
Views stay thin: each action is one ``tenancy.team`` service, which checks the rules and writes the
audit entry.
"""

from typing import Any

from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from backoffice.access import FINANCE, OWNERS, SECOND_FACTORS, current_actor, current_tenant, is_owner, staff_view
from backoffice.team.forms import InvitationAcceptForm, InviteForm, RoleForm, TwoFactorRequirementForm
from billing_platform.errors import DomainError, InvalidInput
from tenancy.errors import (
    AlreadyMember,
    InvitationForAnotherEmail,
    InvitationNotFound,
    InvitationNotPending,
    LastOwner,
    MembershipNotFound,
)
from tenancy.middleware import SESSION_KEY
from tenancy.models import Role
from tenancy.team import (
    invitation_accept,
    invitation_create,
    invitation_for_token,
    invitation_list_pending,
    invitation_revoke,
    invitation_send,
    login_exists,
    membership_list,
    membership_remove,
    membership_role_change,
    team_history,
    tenant_two_factor_update,
)

HISTORY_SIZE = 10
# A login made by accepting an invitation: the password was just chosen, no other factor exists yet.
INVITEE_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _team_page(request: HttpRequest, *, invite_form: InviteForm | None = None, status: int = 200) -> HttpResponse:
    tenant = current_tenant(request)
    now = timezone.now()
    members = list(membership_list(tenant=tenant))
    with_second_factor = set(
        Authenticator.objects.filter(user_id__in=[m.user_id for m in members], type__in=SECOND_FACTORS)
        .values_list("user_id", flat=True)
        .distinct()
    )
    owners = sum(1 for m in members if m.role == Role.OWNER)
    rows = [
        {
            "membership": m,
            "second_factor": m.user_id in with_second_factor,
            "is_me": m.user_id == request.user.pk,
            # The last owner can be neither demoted nor removed: the page offers neither.
            "last_owner": m.role == Role.OWNER and owners == 1,
        }
        for m in members
    ]
    context = {
        "tenant": tenant,
        "can_manage": is_owner(request),
        "rows": rows,
        "roles": Role.choices,
        "invitations": invitation_list_pending(tenant=tenant, at=now),
        "invite_form": invite_form or InviteForm(),
        "history": team_history(tenant=tenant)[:HISTORY_SIZE],
    }
    return render(request, "backoffice/team/team.html", context, status=status)


@staff_view(FINANCE)
def team(request: HttpRequest) -> HttpResponse:
    return _team_page(request)


@staff_view(OWNERS)
@require_POST
def invite_view(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _team_page(request, invite_form=form, status=422)
    try:
        invitation, token = invitation_create(
            tenant=current_tenant(request),
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            actor=current_actor(request),
            at=timezone.now(),
            invited_by=request.user,
        )
    except AlreadyMember:
        form.add_error("email", _("This person is already a member of the team."))
        return _team_page(request, invite_form=form, status=409)
    except InvalidInput as exc:
        for error in exc.errors:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        return _team_page(request, invite_form=form, status=422)
    accept_url = request.build_absolute_uri(reverse("backoffice:invitation-accept", args=[token]))
    invitation_send(
        invitation=invitation,
        accept_url=accept_url,
        inviter=request.user.email or str(request.user),  # type: ignore[union-attr]
        language=translation.get_language() or "en",
    )
    messages.success(
        request,
        _("Invitation sent to %(email)s as %(role)s.")
        % {"email": invitation.email, "role": invitation.get_role_display()},
    )
    return redirect("backoffice:team")


@staff_view(OWNERS)
@require_POST
def invitation_revoke_view(request: HttpRequest, pk: str) -> HttpResponse:
    try:
        invitation = invitation_revoke(
            tenant=current_tenant(request), invitation_id=pk, actor=current_actor(request), at=timezone.now()
        )
    except (InvitationNotFound, InvitationNotPending, ValueError, ValidationError):  # ValueError: not a UUID
        messages.error(request, _("This invitation is no longer pending."))
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, _("Invitation to %(email)s revoked.") % {"email": invitation.email})
    return redirect("backoffice:team")


@staff_view(OWNERS)
@require_POST
def role_change_view(request: HttpRequest, pk: str) -> HttpResponse:
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose one of the roles."))
        return redirect("backoffice:team")
    try:
        membership = membership_role_change(
            tenant=current_tenant(request),
            membership_id=pk,
            role=form.cleaned_data["role"],
            actor=current_actor(request),
            at=timezone.now(),
        )
    except MembershipNotFound:
        messages.error(request, _("No such member."))
    except LastOwner:
        messages.error(request, _("The team needs an owner: make another member owner first."))
    else:
        messages.success(
            request,
            _("%(email)s is now %(role)s.") % {"email": membership.user.email, "role": membership.get_role_display()},
        )
    return redirect("backoffice:team")


@staff_view(OWNERS)
@require_POST
def member_remove_view(request: HttpRequest, pk: str) -> HttpResponse:
    try:
        membership = membership_remove(
            tenant=current_tenant(request), membership_id=pk, actor=current_actor(request), at=timezone.now()
        )
    except MembershipNotFound:
        messages.error(request, _("No such member."))
    except LastOwner:
        messages.error(request, _("The team needs an owner: make another member owner first."))
    else:
        messages.success(request, _("%(email)s was removed from the team.") % {"email": membership.user.email})
        if membership.user_id == request.user.pk:  # left the team: its pages are closed now
            request.session.pop(SESSION_KEY, None)
            return redirect("backoffice:home")
    return redirect("backoffice:team")


@staff_view(OWNERS)
@require_POST
def two_factor_requirement_view(request: HttpRequest) -> HttpResponse:
    form = TwoFactorRequirementForm(request.POST)
    form.is_valid()  # a checkbox: absent is False, anything else True
    required = bool(form.cleaned_data.get("two_factor_required"))
    tenant_two_factor_update(
        tenant=current_tenant(request), required=required, actor=current_actor(request), at=timezone.now()
    )
    if required:
        messages.success(request, _("Owners and finance admins now need two-factor authentication."))
    else:
        messages.success(request, _("Two-factor authentication is no longer required."))
    return redirect(reverse("backoffice:settings") + "#security")


# --- the invitation link ------------------------------------------------------------------------------


def _invitation_page(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, "backoffice/team/invitation_accept.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the page's address holds the token
    return response


@never_cache
def invitation_accept_view(request: HttpRequest, token: str) -> HttpResponse:
    now = timezone.now()
    try:
        invitation = invitation_for_token(token=token, at=now)
    except InvitationNotFound:
        return _invitation_page(request, {"problem": "unknown"}, status=404)
    except InvitationNotPending:
        return _invitation_page(request, {"problem": "used"}, status=410)
    user = request.user if request.user.is_authenticated else None
    context: dict[str, Any] = {"invitation": invitation, "form": None, "login_url": None}
    if user is not None:
        if (user.email or "").lower() != invitation.email:
            context["problem"] = "other_login"
            return _invitation_page(request, context, status=403)
    elif login_exists(email=invitation.email):
        context["login_url"] = "%s?next=%s" % (reverse("backoffice:login"), request.path)
        return _invitation_page(request, context)
    else:
        context["form"] = InvitationAcceptForm(request.POST or None)
    if request.method != "POST":
        return _invitation_page(request, context)
    form = context["form"]
    if form is not None and not form.is_valid():
        return _invitation_page(request, context, status=422)
    try:
        accepted = invitation_accept(
            token=token, at=now, user=user, password=form.cleaned_data["password1"] if form is not None else ""
        )
    except InvalidInput as exc:
        for error in exc.errors:
            form.add_error("password1", error.message)
        return _invitation_page(request, context, status=422)
    except (InvitationNotPending, InvitationNotFound):
        return _invitation_page(request, {"problem": "used"}, status=410)
    except (InvitationForAnotherEmail, AlreadyMember) as exc:
        messages.error(request, exc.detail)
        return redirect("backoffice:home")
    if user is None:
        login(request, accepted.user, backend=INVITEE_BACKEND)
    request.session[SESSION_KEY] = str(accepted.membership.tenant_id)
    messages.success(
        request,
        _("Welcome to %(tenant)s's team, as %(role)s.")
        % {"tenant": invitation.tenant.name, "role": accepted.membership.get_role_display()},
    )
    return redirect("backoffice:home")
