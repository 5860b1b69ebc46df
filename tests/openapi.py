"""Responses checked against the published schema (``docs/openapi.yaml``), as a client generated
from it reads them: schemathesis' response-conformance check (status documented, body valid against
the operation's schema for that status: types, nullable, required, enums, ``oneOf``)."""

from functools import cache
from pathlib import Path
from typing import Any

import requests
import schemathesis
from schemathesis.core.transport import Response as SchemathesisResponse
from schemathesis.specs.openapi.schemas import OpenApiSchema

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"


@cache
def published_schema() -> OpenApiSchema:
    return schemathesis.openapi.from_path(str(SCHEMA_PATH))


def assert_conforms(response: Any) -> Any:
    """Check a Django test client's response against its operation in the published schema and
    return its JSON body. Raises when the route or its status is undocumented, or when the body
    does not validate (the exception lists every mismatch with its path in the body)."""
    request = response.wsgi_request
    method, path = request.method, request.path
    operation = published_schema().find_operation_by_path(method, path)
    assert operation is not None, f"{method} {path} is not in docs/openapi.yaml"
    assert operation.responses.find_by_status_code(response.status_code) is not None, (
        f"{operation.label} answered {response.status_code}, which the schema does not document: "
        f"{response.content[:500]!r}"
    )
    prepared = requests.Request(method, "http://testserver" + request.get_full_path()).prepare()
    headers = {name.lower(): [value] for name, value in response.headers.items()}
    converted = SchemathesisResponse(
        status_code=response.status_code,
        headers=headers,
        content=response.content,
        request=prepared,
        elapsed=0.0,
        verify=True,
    )
    published_schema().validate_response(operation, converted)
    return response.json() if response.content else None
