"""Who performs a write: a staff user, an API key, a customer's portal user or the system. Passed
to services for the audit log."""

from dataclasses import dataclass

from tenancy.models import ActorType


@dataclass(frozen=True, slots=True)
class Actor:
    type: str
    id: str
    label: str

    @classmethod
    def user(cls, user: object) -> "Actor":
        return cls(ActorType.USER, str(getattr(user, "pk", "")), str(getattr(user, "email", "") or user))

    @classmethod
    def api_key(cls, key: object) -> "Actor":
        return cls(ActorType.API_KEY, str(getattr(key, "pk", "")), str(key))

    @classmethod
    def portal_user(cls, user: object | None) -> "Actor":
        """A customer's portal user; None: a session opened by a portal link, vouched for by the
        tenant's own app."""
        if user is None:
            return cls(ActorType.PORTAL_USER, "", "portal link")
        return cls(ActorType.PORTAL_USER, str(getattr(user, "pk", "")), str(getattr(user, "email", "") or user))

    @classmethod
    def partner_user(cls, user: object) -> "Actor":
        """A partner's user, in the partner dashboard."""
        return cls(ActorType.PARTNER_USER, str(getattr(user, "pk", "")), str(getattr(user, "email", "") or user))

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls(ActorType.SYSTEM, "", label)
