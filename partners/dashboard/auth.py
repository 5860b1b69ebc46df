"""Logging into the partner dashboard, on the tenant's own page ``/partners/<slug>/login/``: the
e-mail address, then a code e-mailed (or the password, for those who set one), then the
authenticator's code when the user has a second factor; the invitation link that lets an invited
user in the first time; logging out; the user's own password and second factor.

Every step answers the same whether or not the address has an account, and is throttled per address
and per client address in Redis (``billing_platform.ratelimit``): past the limit, the page says how
long to wait, with a 429. The services (``partners.login``) audit each refused step; the session
they open audits the login."""

import hashlib
import math
from typing import Any

import pyotp
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
from django.views.decorators.http import require_POST

from billing_platform.errors import InvalidInput
from billing_platform.ratelimit import Limit, Rate, counts_hit
from billing_platform.rls import tenant_activate
from customers.portal_users import totp_secret_new
from partners.dashboard.access import (
    TENANT_COOKIE,
    current_partner,
    login_url,
    partner_render,
    partner_view,
    session_cookie,
    session_cookie_set,
)
from partners.login import (
    PartnerLoginRefused,
    partner_invitation_accept,
    partner_invitation_get,
    partner_login_code_check,
    partner_login_code_send,
    partner_login_password_check,
    partner_login_totp_check,
    partner_user_password_set,
    partner_user_totp_set,
)
from partners.models import PartnerUser
from partners.sessions import COOKIE_PATH, partner_session_end, partner_session_open
from tenancy.models import Tenant
from tenancy.selectors import tenant_for_slug

# Each address may try 10 login steps per 15 minutes, each client address 30: enough for a person
# who mistypes, far too few to guess a 6-digit code (which dies after 5 wrong tries anyway).
ADDRESS_RATE = Rate(10, 15 * 60)
CLIENT_RATE = Rate(30, 15 * 60)
SECOND_STEP_MAX_AGE = 5 * 60
SECOND_STEP_SALT = "tripod.partners.login.second-step"
TOTP_SETUP_SALT = "tripod.partners.totp-setup"
TOTP_SETUP_MAX_AGE = 15 * 60
PUBLIC = "partners/dashboard/auth/"


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


def client_ip(request: HttpRequest) -> str:
    """The client's address, behind ``STAFF_LOGIN_TRUSTED_PROXIES`` proxies as for staff logins."""
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
        Limit("partner-login:address:%s" % address, ADDRESS_RATE, "this address"),
        Limit("partner-login:client:%s" % client_ip(request), CLIENT_RATE, "this client"),
    ]
    counts = counts_hit(limits) or []
    exceeded = [c.reset for c in counts if c.exceeded]
    return max(exceeded) if exceeded else 0


def _page(request: HttpRequest, template: str, tenant: Tenant, status: int = 200, **context: Any) -> HttpResponse:
    return render(request, PUBLIC + template, {"login_tenant": tenant, **context}, status=status)


def _too_many(request: HttpRequest, tenant: Tenant, wait: int) -> HttpResponse:
    response = _page(request, "login.html", tenant, 429, form=EmailForm(), minutes=max(1, math.ceil(wait / 60)))
    response["Retry-After"] = str(wait)
    return response


def _login_tenant(slug: str) -> Tenant:
    tenant = tenant_for_slug(slug=slug)
    if tenant is None:
        raise Http404("No such partner dashboard.")
    # Known now: what the login reads and writes is this tenant's (row-level security).
    tenant_activate(tenant.pk)
    return tenant


def _session_response(user: PartnerUser, tenant: Tenant, via: str) -> HttpResponse:
    opened = partner_session_open(user=user, at=timezone.now(), via=via)
    response = redirect("partners:home")
    session_cookie_set(response, opened.token, tenant.slug)
    return response


def _after_first_step(request: HttpRequest, tenant: Tenant, user: PartnerUser, via: str) -> HttpResponse:
    """The session, or first the authenticator's code when the user has a second factor."""
    if not user.totp_secret:
        return _session_response(user, tenant, via)
    pending = signing.dumps({"u": str(user.pk), "t": str(tenant.pk), "v": via}, salt=SECOND_STEP_SALT)
    return _page(request, "second_factor.html", tenant, form=SecondFactorForm(initial={"pending": pending}))


@never_cache
@sensitive_post_parameters("password", "code")
def login(request: HttpRequest, slug: str) -> HttpResponseBase:
    """One address for the whole login; a POST's ``step`` says which form was sent."""
    tenant = _login_tenant(slug)
    if request.method != "POST":
        return _page(
            request, "login.html", tenant, form=EmailForm(initial={"email": request.GET.get("email", "")[:254]})
        )
    step = request.POST.get("step", "")
    if step == "code":
        return _code_step(request, tenant)
    if step == "second-factor":
        return _second_factor_step(request, tenant)
    return _email_step(request, tenant)


def _email_step(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    form = EmailForm(request.POST)
    if not form.is_valid():
        return _page(request, "login.html", tenant, 400, form=form)
    email = form.cleaned_data["email"]
    wait = _throttled(request, tenant, email)
    if wait:
        return _too_many(request, tenant, wait)
    now = timezone.now()
    if request.POST.get("action") == "password":
        try:
            user = partner_login_password_check(
                tenant=tenant, email=email, password=form.cleaned_data["password"], at=now
            )
        except PartnerLoginRefused:
            form.add_error(None, _("This address and password do not match. Check them, or ask for a code by e-mail."))
            return _page(request, "login.html", tenant, form=form)
        return _after_first_step(request, tenant, user, "password")
    # The same page whether or not the address has an account: only an active user gets a code.
    partner_login_code_send(tenant=tenant, email=email, at=now)
    return _page(request, "code.html", tenant, form=CodeForm(initial={"email": email}))


def _code_step(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    form = CodeForm(request.POST)
    if not form.is_valid():
        return _page(request, "code.html", tenant, 400, form=form)
    email = form.cleaned_data["email"]
    wait = _throttled(request, tenant, email)
    if wait:
        return _too_many(request, tenant, wait)
    try:
        user = partner_login_code_check(tenant=tenant, email=email, code=form.cleaned_data["code"], at=timezone.now())
    except PartnerLoginRefused:
        form.add_error(
            "code",
            _(
                "This code is not right, or no longer works (10 minutes, 5 tries). "
                "Check the latest e-mail, or ask for a new code."
            ),
        )
        return _page(request, "code.html", tenant, form=form)
    return _after_first_step(request, tenant, user, "code")


def _second_factor_step(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    form = SecondFactorForm(request.POST)
    if not form.is_valid():
        return _page(request, "second_factor.html", tenant, 400, form=form)
    try:
        pending = signing.loads(form.cleaned_data["pending"], salt=SECOND_STEP_SALT, max_age=SECOND_STEP_MAX_AGE)
    except signing.BadSignature:
        pending = None
    if not isinstance(pending, dict) or pending.get("t") != str(tenant.pk):
        # Too late (or not ours): the login starts again.
        return _page(request, "login.html", tenant, 400, form=EmailForm(), expired=True)
    user = PartnerUser.objects.filter(tenant=tenant, pk=pending["u"]).only("email").first()
    wait = _throttled(request, tenant, user.email if user else pending["u"])
    if wait:
        return _too_many(request, tenant, wait)
    try:
        user = partner_login_totp_check(
            tenant=tenant, user_id=pending["u"], code=form.cleaned_data["code"], at=timezone.now()
        )
    except PartnerLoginRefused:
        form.add_error("code", _("This code is not the one your app shows now."))
        return _page(request, "second_factor.html", tenant, form=form)
    return _session_response(user, tenant, "%s+totp" % pending.get("v", "code"))


@never_cache
@sensitive_post_parameters("password", "password2")
def invitation(request: HttpRequest, slug: str, token: str) -> HttpResponseBase:
    """The invitation's link: shows a form (an e-mail scanner's GET uses nothing); sending it uses
    the link once, sets the password if one was chosen, and opens the dashboard."""
    tenant = _login_tenant(slug)
    found = partner_invitation_get(tenant=tenant, token=token, at=timezone.now())
    if found is None:
        return _page(request, "invitation_expired.html", tenant, 410)
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = partner_invitation_accept(
                tenant=tenant, token=token, password=form.cleaned_data["password"], at=timezone.now()
            )
        except InvalidInput as exc:
            for error in exc.errors:
                form.add_error("password", error.message)
        else:
            if user is None:
                return _page(request, "invitation_expired.html", tenant, 410)
            return _after_first_step(request, tenant, user, "invitation")
    return _page(request, "invitation.html", tenant, 400 if form.errors else 200, form=form, invited=found.user)


@require_POST
def logout(request: HttpRequest) -> HttpResponseBase:
    partner_session_end(token=session_cookie(request), at=timezone.now())
    response = redirect("partners:signed-out")
    response.delete_cookie(settings.PARTNER_SESSION_COOKIE, path=COOKIE_PATH)
    return response


def signed_out(request: HttpRequest) -> HttpResponse:
    slug = request.COOKIES.get(TENANT_COOKIE, "")
    tenant = tenant_for_slug(slug=slug) if slug else None
    url = login_url(request)
    return render(
        request,
        PUBLIC + "signed_out.html",
        {"login_tenant": tenant, "login_url": url if tenant is not None and url != request.path else ""},
    )


# --- the user's own security ---------------------------------------------------------------------------


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
    code = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": r"[0-9 ]*"}),
    )


def _qr_svg(data: str) -> str:
    """The QR code as inline SVG markup (no script, no style attribute: the CSP allows it)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    return str(image.to_string(encoding="unicode"))


@never_cache
@sensitive_post_parameters("current_password", "password", "password2", "code", "setup")
@partner_view()
def security(request: HttpRequest) -> HttpResponse:
    """Password and second factor of the logged-in partner user. Each change ends their other
    sessions."""
    ctx = current_partner(request)
    user, tenant, keep, now = ctx.user, ctx.tenant, session_cookie(request), timezone.now()
    password_form, totp_form = PasswordForm(), TotpForm()
    setup_secret = ""
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action == "password":
        password_form = PasswordForm(request.POST)
        if password_form.is_valid():
            try:
                partner_user_password_set(
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
    elif action in ("totp-enable", "totp-disable"):
        totp_form = TotpForm(request.POST)
        if action == "totp-enable":
            try:
                setup_secret = signing.loads(
                    request.POST.get("setup", ""), salt=TOTP_SETUP_SALT + str(user.pk), max_age=TOTP_SETUP_MAX_AGE
                )
            except signing.BadSignature:
                setup_secret = ""
        if action == "totp-enable" and not setup_secret:
            totp_form.is_valid()
            totp_form.add_error(None, _("This set-up has expired: start again."))
        elif totp_form.is_valid():
            try:
                partner_user_totp_set(
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
                if setup_secret:
                    return _done(request, _("Two-factor authentication is on. Your other sessions are closed."))
                return _done(request, _("Two-factor authentication is off. Your other sessions are closed."))
    elif request.GET.get("setup") == "totp" and not user.totp_secret:
        setup_secret = totp_secret_new()
    context: dict[str, Any] = {
        "password_form": password_form,
        "totp_form": totp_form,
        "has_password": bool(user.password),
        "has_totp": bool(user.totp_secret),
    }
    if setup_secret and not user.totp_secret:
        uri = pyotp.TOTP(setup_secret).provisioning_uri(name=user.email, issuer_name=tenant.name)
        context["setup"] = {
            "secret": setup_secret,
            "token": signing.dumps(setup_secret, salt=TOTP_SETUP_SALT + str(user.pk)),
            # Generated here from the secret: nothing outside the page holds it.
            "qr": mark_safe(_qr_svg(uri)),  # noqa: S308
        }
    status = 400 if (password_form.errors or totp_form.errors) else 200
    return partner_render(request, "partners/dashboard/security.html", context, status=status)


def _done(request: HttpRequest, message: str) -> HttpResponse:
    messages.success(request, message)
    return redirect("partners:security")
