from billing_platform.errors import Conflict, DomainError


class MalformedRequest(DomainError):
    status = 400
    code = "malformed_request"
    title = "Malformed request"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class MonthNotArchivable(Conflict):
    code = "month_not_archivable"


class UsageArchived(Conflict):
    """Raw events asked for in a month whose raw events are archived (``usage.archive``)."""

    code = "usage_archived"


class ArchiveCorrupt(Conflict):
    code = "archive_corrupt"
