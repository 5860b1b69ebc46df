"""Forms of the team pages: an invitation, a member's role, the tenant's two-factor requirement,
and the password an invitee chooses. The ``tenancy.team`` services check the rules."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from backoffice.forms import InputRulesMixin
from tenancy.models import Role


class InviteForm(InputRulesMixin, forms.Form):
    email = forms.EmailField(label=_("Email"), max_length=254)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.FINANCE_VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class TwoFactorRequirementForm(forms.Form):
    two_factor_required = forms.BooleanField(
        label=_("Require two-factor authentication for owners and finance admins"),
        required=False,
        help_text=_(
            "The roles that can finalize invoices and issue credit notes. A member without an "
            "authenticator app or a passkey is asked to set one up before anything else."
        ),
    )


class InvitationAcceptForm(forms.Form):
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("At least 10 characters, not a common password."),
    )
    password2 = forms.CharField(
        label=_("Password (again)"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("password1") and cleaned.get("password2") and cleaned["password1"] != cleaned["password2"]:
            self.add_error("password2", _("The two passwords differ."))
        return cleaned
