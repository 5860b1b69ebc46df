from billing_platform.errors import Conflict, InvalidInput, NotFound


class TenantSlugTaken(Conflict):
    code = "tenant_slug_taken"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class ApiKeyAlreadyRevoked(Conflict):
    code = "api_key_already_revoked"


class InvalidTenantSettings(InvalidInput):
    code = "invalid_tenant_settings"
