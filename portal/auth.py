"""Logging in to the customer portal (specs/portal.md, "Who logs in"), on the tenant's own page
``/portal/<slug>/login/``: the e-mail address, then a code e-mailed (or the password, for those who
set one), then the authenticator's code when the user has a second factor; and the invitation link
that lets an invited user in the first time. The user's security page (password, second factor) is
here too.

Every step answers the same whether or not the address has an account, and is throttled per address
and per client address in Redis (``billing_platform.ratelimit``): past the limit, the page says how
long to wait, with a 429. The services (``customers.portal_users``) audit each refused step; the
session they open audits the login."""

import hashlib
import math
from typing import Any

import qrcode  # type: ignore[import-untyped]
import qrcode.image.svg  # type: ignore[import-untyped]
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from billing_platform.errors import InvalidInput
from billing_platform.ratelimit import Limit, Rate, counts_hit
from billing_platform.rls import tenant_activate
from customers.errors import PortalLoginRefused
from customers.models import PortalUser
from customers.portal import portal_session_open
from customers.portal_users import (
    portal_invitation_accept,
    portal_invitation_get,
    portal_login_code_check,
    portal_login_code_send,
    portal_login_password_check,
    portal_login_totp_check,
    portal_user_password_set,
    portal_user_totp_disable,
    portal_user_totp_enable,
    totp_provisioning_uri,
    totp_secret_new,
)
from portal.access import current_portal, portal_view, session_cookie
from portal.views import session_cookie_set
from tenancy.models import Tenant
from tenancy.selectors import tenant_for_slug

# Each address may try 10 login steps per 15 minutes, each client address 30: enough for a person
# who mistypes, far too few to guess a 6-digit code (which dies after 5 wrong tries anyway).
ADDRESS_RATE = Rate(10, 15 * 60)
CLIENT_RATE = Rate(30, 15 * 60)
# The second step (authenticator's code) must follow the first within 5 minutes.
SECOND_STEP_MAX_AGE = 5 * 60
SECOND_STEP_SALT = "tripod.portal.login.second-step"
TOTP_SETUP_SALT = "tripod.portal.totp-setup"
TOTP_SETUP_MAX_AGE = 15 * 60


# --- forms ---------------------------------------------------------------------------------------------


class EmailForm(forms.Form):
    email = forms.EmailField(
        label=gettext_lazy("E-mail address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label=gettext_lazy("Password"),
        required=False,
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=gettext_lazy("Only if you chose one. Otherwise, ask for a code by e-mail."),
    )


class CodeForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=forms.HiddenInput)
    code = forms.CharField(
        label=gettext_lazy("Code from the e-mail"),
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "pattern": r"[0-9 ]*"}
        ),
    )


class SecondFactorForm(forms.Form):
    pending = forms.CharField(max_length=1000, widget=forms.HiddenInput)
    code = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "pattern": r"[0-9 ]*"}
        ),
    )


class InvitationForm(forms.Form):
    password = forms.CharField(
        label=gettext_lazy("Choose a password (optional)"),
        required=False,
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=gettext_lazy("Leave it blank to log in each time with a code sent by e-mail."),
    )
    password2 = forms.CharField(
        label=gettext_lazy("The same password again"),
        required=False,
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("password", "") != cleaned.get("password2", ""):
            self.add_error("password2", _("The two passwords differ."))
        return cleaned


class PasswordForm(forms.Form):
    current_password = forms.CharField(
        label=gettext_lazy("Current password"),
        required=False,
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    password = forms.CharField(
        label=gettext_lazy("New password"),
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=gettext_lazy("At least 10 characters, not a common password."),
    )
    password2 = forms.CharField(
        label=gettext_lazy("The same password again"),
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("password") and cleaned.get("password") != cleaned.get("password2"):
            self.add_error("password2", _("The two passwords differ."))
        return cleaned


class TotpForm(forms.Form):
    setup = forms.CharField(max_length=1000, required=False, widget=forms.HiddenInput)
    code = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": r"[0-9 ]*"}),
    )


# --- throttling ------------------------------------------------------------------------------------------


def client_ip(request: HttpRequest) -> str:
    """The client's address, behind ``STAFF_LOGIN_TRUSTED_PROXIES`` proxies as for staff logins: the
    address the outermost proxy saw (entries further left are the client's own claims)."""
    proxies = settings.STAFF_LOGIN_TRUSTED_PROXIES
    if proxies > 0:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _throttled(request: HttpRequest, tenant: Tenant, email: str) -> int:
    """Count this login step; the seconds to wait when over a limit, else 0. Redis down: not counted
    (the codes' own 5-try limit still holds)."""
    address = hashlib.sha256(("%s:%s" % (tenant.pk, (email or "").strip().lower())).encode()).hexdigest()[:32]
    limits = [
        Limit("portal-login:address:%s" % address, ADDRESS_RATE, "this address"),
        Limit("portal-login:client:%s" % client_ip(request), CLIENT_RATE, "this client"),
    ]
    counts = counts_hit(limits) or []
    exceeded = [c.reset for c in counts if c.exceeded]
    return max(exceeded) if exceeded else 0


def _too_many(request: HttpRequest, tenant: Tenant, wait: int) -> HttpResponse:
    minutes = max(1, math.ceil(wait / 60))
    context = {"login_tenant": tenant, "form": EmailForm(), "minutes": minutes}
    response = render(request, "portal/auth/too_many.html", context, status=429)
    response["Retry-After"] = str(wait)
    return response


# --- login -----------------------------------------------------------------------------------------------


def _login_tenant(slug: str) -> Tenant:
    tenant = tenant_for_slug(slug=slug)
    if tenant is None:
        raise Http404("No such portal.")
    # Known now: what the login reads and writes is this tenant's (row-level security).
    tenant_activate(tenant.pk)
    return tenant


def _session_response(user: PortalUser, tenant: Tenant, via: str) -> HttpResponse:
    opened = portal_session_open(customer=user.customer, user=user, at=timezone.now(), via=via)
    response = redirect("portal:home")
    session_cookie_set(response, opened.token, tenant.slug)
    return response


def _after_first_step(request: HttpRequest, tenant: Tenant, user: PortalUser, via: str) -> HttpResponse:
    """The session, or first the authenticator's code when the user has a second factor."""
    if not user.totp_secret:
        return _session_response(user, tenant, via)
    pending = signing.dumps({"u": str(user.pk), "t": str(tenant.pk), "v": via}, salt=SECOND_STEP_SALT)
    form = SecondFactorForm(initial={"pending": pending})
    return render(request, "portal/auth/second_factor.html", {"login_tenant": tenant, "form": form})


def _code_page(request: HttpRequest, tenant: Tenant, form: CodeForm, status: int = 200) -> HttpResponse:
    return render(request, "portal/auth/code.html", {"login_tenant": tenant, "form": form}, status=status)


@never_cache
@sensitive_post_parameters("password", "code")
def login(request: HttpRequest, slug: str) -> HttpResponseBase:
    """One address for the whole login; a POST's ``step`` says which form was sent."""
    tenant = _login_tenant(slug)
    if request.method != "POST":
        form = EmailForm(initial={"email": request.GET.get("email", "")[:254]})
        return render(request, "portal/auth/login.html", {"login_tenant": tenant, "form": form})
    step = request.POST.get("step", "")
    if step == "code":
        return _code_step(request, tenant)
    if step == "second-factor":
        return _second_factor_step(request, tenant)
    return _email_step(request, tenant)


def _email_step(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    form = EmailForm(request.POST)
    if not form.is_valid():
        return render(request, "portal/auth/login.html", {"login_tenant": tenant, "form": form}, status=400)
    email = form.cleaned_data["email"]
    wait = _throttled(request, tenant, email)
    if wait:
        return _too_many(request, tenant, wait)
    now = timezone.now()
    if request.POST.get("action") == "password":
        try:
            user = portal_login_password_check(
                tenant=tenant, email=email, password=form.cleaned_data["password"], at=now
            )
        except PortalLoginRefused:
            form.add_error(None, _("This address and password do not match. Check them, or ask for a code by e-mail."))
            return render(request, "portal/auth/login.html", {"login_tenant": tenant, "form": form})
        return _after_first_step(request, tenant, user, "password")
    # The same page whether or not the address has an account: only an active user gets a code.
    portal_login_code_send(tenant=tenant, email=email, at=now)
    return _code_page(request, tenant, CodeForm(initial={"email": email}))


def _code_step(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    form = CodeForm(request.POST)
    if not form.is_valid():
        return _code_page(request, tenant, form, status=400)
    email = form.cleaned_data["email"]
    wait = _throttled(request, tenant, email)
    if wait:
        return _too_many(request, tenant, wait)
    try:
        user = portal_login_code_check(tenant=tenant, email=email, code=form.cleaned_data["code"], at=timezone.now())
    except PortalLoginRefused:
        form.add_error(
            "code",
            _(
                "This code is not right, or no longer works (10 minutes, 5 tries). "
                "Check the latest e-mail, or ask for a new code."
            ),
        )
        return _code_page(request, tenant, form)
    return _after_first_step(request, tenant, user, "code")


def _second_factor_step(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    form = SecondFactorForm(request.POST)
    context: dict[str, Any] = {"login_tenant": tenant, "form": form}
    if not form.is_valid():
        return render(request, "portal/auth/second_factor.html", context, status=400)
    try:
        pending = signing.loads(form.cleaned_data["pending"], salt=SECOND_STEP_SALT, max_age=SECOND_STEP_MAX_AGE)
    except signing.BadSignature:
        pending = None
    if not isinstance(pending, dict) or pending.get("t") != str(tenant.pk):
        # Too late (or not ours): the login starts again.
        context = {"login_tenant": tenant, "form": EmailForm(), "expired": True}
        return render(request, "portal/auth/login.html", context, status=400)
    user = PortalUser.objects.filter(tenant=tenant, pk=pending["u"]).only("email").first()
    wait = _throttled(request, tenant, user.email if user else pending["u"])
    if wait:
        return _too_many(request, tenant, wait)
    try:
        user = portal_login_totp_check(
            tenant=tenant, user_id=pending["u"], code=form.cleaned_data["code"], at=timezone.now()
        )
    except PortalLoginRefused:
        form.add_error("code", _("This code is not the one your app shows now."))
        return render(request, "portal/auth/second_factor.html", context)
    return _session_response(user, tenant, "%s+totp" % pending.get("v", "code"))


# --- invitations --------------------------------------------------------------------------------------------


@never_cache
@sensitive_post_parameters("password", "password2")
def invitation(request: HttpRequest, slug: str, token: str) -> HttpResponseBase:
    """The invitation's link: shows a form (an e-mail scanner's GET uses nothing); sending it uses
    the link once, sets the password if one was chosen, and opens the portal."""
    tenant = _login_tenant(slug)
    found = portal_invitation_get(tenant=tenant, token=token, at=timezone.now())
    if found is None:
        return render(request, "portal/auth/invitation_expired.html", {"login_tenant": tenant}, status=410)
    form = InvitationForm(request.POST or None)
    context = {"login_tenant": tenant, "form": form, "invited": found.user}
    if request.method == "POST" and form.is_valid():
        try:
            user = portal_invitation_accept(
                tenant=tenant, token=token, password=form.cleaned_data["password"], at=timezone.now()
            )
        except InvalidInput as exc:
            for error in exc.errors:
                form.add_error("password", error.message)
        else:
            if user is None:
                return render(request, "portal/auth/invitation_expired.html", {"login_tenant": tenant}, status=410)
            return _after_first_step(request, tenant, user, "invitation")
    return render(request, "portal/auth/invitation.html", context, status=400 if form.errors else 200)


# --- the user's own security ---------------------------------------------------------------------------------


def _qr_svg(data: str) -> str:
    """The QR code as inline SVG markup (no script, no style attribute: the CSP allows it)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    return str(image.to_string(encoding="unicode"))


@never_cache
@sensitive_post_parameters("current_password", "password", "password2", "code", "setup")
@portal_view()
def security(request: HttpRequest) -> HttpResponse:
    """Password and second factor of the logged-in portal user. Each change ends their other
    sessions. A session opened by a portal link has no user: nothing to secure here."""
    portal = current_portal(request)
    user = portal.user
    if user is None:
        return render(request, "portal/auth/security.html", {"no_user": True})
    tenant = portal.tenant
    user.customer = portal.customer
    keep = session_cookie(request)
    now = timezone.now()
    password_form = PasswordForm()
    totp_form = TotpForm()
    setup_secret = ""
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action == "password":
        password_form = PasswordForm(request.POST)
        if password_form.is_valid():
            try:
                portal_user_password_set(
                    tenant=tenant,
                    user=user,
                    password=password_form.cleaned_data["password"],
                    current_password=password_form.cleaned_data["current_password"],
                    keep_token=keep,
                    at=now,
                )
            except InvalidInput as exc:
                for error in exc.errors:
                    password_form.add_error(error.field if error.field in password_form.fields else None, error.message)
            else:
                return _done(request, _("Password saved. Your other sessions are closed."))
    elif action == "totp-enable":
        totp_form = TotpForm(request.POST)
        try:
            setup_secret = signing.loads(
                request.POST.get("setup", ""), salt=TOTP_SETUP_SALT + str(user.pk), max_age=TOTP_SETUP_MAX_AGE
            )
        except signing.BadSignature:
            setup_secret = ""
        if not setup_secret:
            totp_form.is_valid()
            totp_form.add_error(None, _("This set-up has expired: start again."))
        elif totp_form.is_valid():
            try:
                portal_user_totp_enable(
                    tenant=tenant,
                    user=user,
                    secret=setup_secret,
                    code=totp_form.cleaned_data["code"],
                    keep_token=keep,
                    at=now,
                )
            except InvalidInput:
                totp_form.add_error("code", _("This code is not the one your app shows now."))
            else:
                return _done(request, _("Two-factor authentication is on. Your other sessions are closed."))
    elif action == "totp-disable":
        totp_form = TotpForm(request.POST)
        if totp_form.is_valid():
            try:
                portal_user_totp_disable(
                    tenant=tenant, user=user, code=totp_form.cleaned_data["code"], keep_token=keep, at=now
                )
            except InvalidInput:
                totp_form.add_error("code", _("This code is not the one your app shows now."))
            else:
                return _done(request, _("Two-factor authentication is off. Your other sessions are closed."))
    elif request.GET.get("setup") == "totp" and not user.totp_secret:
        setup_secret = totp_secret_new()
    context: dict[str, Any] = {
        "user": user,
        "password_form": password_form,
        "totp_form": totp_form,
        "has_password": bool(user.password),
        "has_totp": bool(user.totp_secret),
    }
    if setup_secret and not user.totp_secret:
        context["setup"] = {
            "secret": setup_secret,
            "token": signing.dumps(setup_secret, salt=TOTP_SETUP_SALT + str(user.pk)),
            # Generated here from the secret: nothing outside the page holds it.
            "qr": mark_safe(_qr_svg(totp_provisioning_uri(user=user, secret=setup_secret))),  # noqa: S308
        }
    status = 400 if (password_form.errors or totp_form.errors) else 200
    return render(request, "portal/auth/security.html", context, status=status)


def _done(request: HttpRequest, message: str) -> HttpResponse:
    messages.success(request, message)
    return redirect("portal:security")
