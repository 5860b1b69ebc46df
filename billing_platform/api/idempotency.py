"""``Idempotency-Key`` for POSTs: a replay with the same key and body returns the first response;
the same key with another request is a 409. The database's unique (tenant, key) is the referee, so
two concurrent first requests cannot both run: a request is one transaction (``ATOMIC_REQUESTS``),
so the second waits on the first's claim of the key, then replays its response or, when the first
failed (its claim rolled back), runs itself."""

import functools
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from billing_platform.errors import Conflict, invalid
from billing_platform.models import IdempotencyRecord

HEADER = "Idempotency-Key"
# 1 to 255 visible ASCII characters, spaces allowed inside: a UUID, a ULID, "order-42/retry". HTTP
# strips a header value's outer spaces; other characters are not safely carried in a header.
KEY_PATTERN = r"^[!-~](?:[ -~]*[!-~])?$"
_KEY_RE = re.compile(KEY_PATTERN)
# Claims of a key that another request holds and then gives back (it failed) are tried again this
# many times before the client is told to retry.
CLAIM_ATTEMPTS = 3

Handler = Callable[..., Response]


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class IdempotentRequestInProgress(Conflict):
    code = "idempotent_request_in_progress"


def _request_hash(request: Request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() if request.method else b"")
    digest.update(b"\0" + request.path.encode() + b"\0")
    digest.update(request.body)
    return digest.hexdigest()


def _redacted(data: Any, fields: tuple[str, ...]) -> Any:
    """The response as it is kept for replays: without the top-level ``fields`` that are shown once
    (a secret), which a replay returns as null."""
    if not fields or not isinstance(data, dict):
        return data
    return {key: (None if key in fields else value) for key, value in data.items()}


def idempotent(handler: Handler) -> Handler:
    """Decorate an APIView's ``post``. Without the header the request runs as usual. A view whose
    answer holds a secret shown once names it in ``idempotency_redact``: it is not kept, and a
    replay answers it as null."""

    @functools.wraps(handler)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        key = key.strip()
        if not _KEY_RE.match(key) or len(key) > settings.TRIPOD["IDEMPOTENCY_KEY_MAX_LENGTH"]:
            raise invalid(HEADER, "invalid", "Idempotency-Key must be 1 to 255 visible ASCII characters.")
        tenant = request.tenant  # type: ignore[attr-defined]
        request_hash = _request_hash(request)
        record = None
        for _ in range(CLAIM_ATTEMPTS):
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        tenant=tenant,
                        key=key,
                        method=request.method or "",
                        path=request.path[:500],
                        request_hash=request_hash,
                    )
                break
            except IntegrityError:
                existing = IdempotencyRecord.objects.filter(tenant=tenant, key=key).first()
                if existing is None:
                    continue  # the first request failed and gave its key back meanwhile: claim it again
                if existing.request_hash != request_hash:
                    raise IdempotencyKeyReused(
                        "This Idempotency-Key was already used with a different request."
                    ) from None
                if existing.response_status is None:
                    raise IdempotentRequestInProgress(
                        "A request with this Idempotency-Key is still being processed; retry shortly."
                    ) from None
                return Response(
                    json.loads(existing.response_body or "null"),
                    status=existing.response_status,
                    headers={"Idempotent-Replayed": "true"},
                )
        if record is None:
            raise IdempotentRequestInProgress(
                "Requests with this Idempotency-Key keep arriving at the same time; retry shortly."
            )
        try:
            response = handler(view, request, *args, **kwargs)
        except Exception:
            # Errors are not remembered: the client may fix the cause and retry with the same key.
            # A transaction that an error already dooms takes the claim with it when it rolls back.
            if not transaction.get_connection().needs_rollback:
                record.delete()
            raise
        if response.status_code >= 500 or response.status_code in (409, 429):
            record.delete()
            return response
        body = json.dumps(_redacted(response.data, getattr(view, "idempotency_redact", ())), cls=JSONEncoder)
        IdempotencyRecord.objects.filter(pk=record.pk).update(response_status=response.status_code, response_body=body)
        return response

    wrapper.accepts_idempotency_key = True  # type: ignore[attr-defined]  # read by the OpenAPI schema
    return wrapper


def accepts_idempotency_key(handler: Any) -> bool:
    """Whether a view's method is decorated with ``idempotent`` (its schema then declares the header)."""
    return bool(getattr(handler, "accepts_idempotency_key", False))
