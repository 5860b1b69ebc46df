"""An API request that may write is one transaction, which an error answer rolls back."""

from collections.abc import Callable
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from billing_platform.middleware import ApiTransactionMiddleware
from billing_platform.models import IdempotencyRecord

pytestmark = pytest.mark.django_db


def view_answering(status: int, tenant: Any, *, keeps_writes_on_error: bool = False) -> Callable[..., HttpResponse]:
    """A view that writes a row, then answers ``status``."""

    class View:
        pass

    View.keeps_writes_on_error = keeps_writes_on_error  # type: ignore[attr-defined]

    def view(request: HttpRequest) -> HttpResponse:
        IdempotencyRecord.objects.create(tenant=tenant, key="k-%d" % status, method="POST", path="/", request_hash="")
        return HttpResponse(status=status)

    view.cls = View  # type: ignore[attr-defined]
    return view


def through_middleware(view: Callable[..., HttpResponse], method: str = "post", path: str = "/api/v1/x") -> int:
    middleware: ApiTransactionMiddleware

    def handler(request: HttpRequest) -> HttpResponse:
        middleware.process_view(request, view)  # as Django's handler does, once the URL is resolved
        return view(request)

    middleware = ApiTransactionMiddleware(handler)
    return middleware(getattr(RequestFactory(), method)(path)).status_code


@pytest.mark.parametrize(("status", "kept"), [(201, True), (302, True), (400, False), (422, False), (503, False)])
def test_an_error_answer_rolls_back_what_the_request_wrote(tenant: Any, status: int, kept: bool) -> None:
    assert through_middleware(view_answering(status, tenant)) == status
    assert IdempotencyRecord.objects.filter(tenant=tenant).exists() is kept


def test_a_view_may_keep_what_it_stored_while_answering_an_error(tenant: Any) -> None:
    assert through_middleware(view_answering(422, tenant, keeps_writes_on_error=True)) == 422
    assert IdempotencyRecord.objects.filter(tenant=tenant).count() == 1


def test_reads_and_pages_outside_the_api_are_left_alone(tenant: Any) -> None:
    # a GET opens no transaction of its own (the schema's page needs no database), nor does the back-office
    assert through_middleware(view_answering(404, tenant), method="get") == 404
    assert through_middleware(view_answering(422, tenant), path="/app/customers/new/") == 422
    assert IdempotencyRecord.objects.filter(tenant=tenant).count() == 2
