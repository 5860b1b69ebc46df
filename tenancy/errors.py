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
