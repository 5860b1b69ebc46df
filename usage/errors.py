from billing_platform.errors import DomainError


class MalformedRequest(DomainError):
    status = 400
    code = "malformed_request"
    title = "Malformed request"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"
