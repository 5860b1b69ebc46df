from billing_platform.errors import Conflict, InvalidInput, NotFound


class TenantSlugTaken(Conflict):
    code = "tenant_slug_taken"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class ApiKeyAlreadyRevoked(Conflict):
    code = "api_key_already_revoked"


class InvalidTenantSettings(InvalidInput):
    code = "invalid_tenant_settings"


class DeviceCloudSecretNotFound(NotFound):
    code = "device_cloud_secret_not_found"


class LastDeviceCloudSecret(Conflict):
    code = "last_device_cloud_secret"


class TooManyDeviceCloudSecrets(Conflict):
    code = "too_many_device_cloud_secrets"


class InvitationNotFound(NotFound):
    code = "invitation_not_found"


class InvitationNotPending(Conflict):
    """The link was used already, revoked, or is past its expiry."""

    code = "invitation_not_pending"


class InvitationForAnotherEmail(Conflict):
    code = "invitation_for_another_email"


class AlreadyMember(Conflict):
    code = "already_member"


class MembershipNotFound(NotFound):
    code = "membership_not_found"


class LastOwner(Conflict):
    code = "last_owner"
