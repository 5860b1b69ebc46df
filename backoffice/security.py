"""A staff member's own security changes, written to the audit log of each of their tenants: a
second factor added, removed or renewed (allauth's MFA signals), a password changed or reset."""

from typing import Any

from allauth.account.signals import password_changed, password_reset, password_set
from allauth.mfa.signals import authenticator_added, authenticator_removed, authenticator_reset
from django.dispatch import receiver
from django.utils import timezone

from tenancy.team import staff_security_record


def _authenticator(action: str) -> Any:
    def record(sender: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
        staff_security_record(user=user, action=action, at=timezone.now(), after={"type": authenticator.type})

    return record


# Connected with strong references: the receivers are made here, nothing else holds them.
authenticator_added.connect(_authenticator("user.second_factor_added"), weak=False, dispatch_uid="audit.mfa.added")
authenticator_removed.connect(
    _authenticator("user.second_factor_removed"), weak=False, dispatch_uid="audit.mfa.removed"
)
authenticator_reset.connect(_authenticator("user.second_factor_renewed"), weak=False, dispatch_uid="audit.mfa.reset")


@receiver(password_changed, dispatch_uid="audit.password.changed")
@receiver(password_set, dispatch_uid="audit.password.set")
def _password_changed(sender: Any, user: Any, **kwargs: Any) -> None:
    staff_security_record(user=user, action="user.password_changed", at=timezone.now())


@receiver(password_reset, dispatch_uid="audit.password.reset")
def _password_reset(sender: Any, user: Any, **kwargs: Any) -> None:
    staff_security_record(user=user, action="user.password_reset", at=timezone.now())
