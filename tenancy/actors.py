"""Who performs a write: a staff user, an API key or the system. Passed to services for the audit log."""

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
    def system(cls, label: str = "system") -> "Actor":
        return cls(ActorType.SYSTEM, "", label)
