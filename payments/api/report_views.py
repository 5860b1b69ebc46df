from datetime import date

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.serializers import problems
from billing_platform.errors import DomainError, FieldError
from billing_platform.periods import local_date
from billing_platform.validation import date_in_range
from payments.api import report_serializers as s
from payments.reports import receivables_aging
from tenancy.api import request_tenant


def _as_of(raw: str) -> date:
    """The day of the report: a malformed one is a 400 (a bad query), as a bad filter is."""
    message = "A date, YYYY-MM-DD, between the years 1900 and 9999."
    try:
        day = date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        day = None
    if day is None or not date_in_range(day):
        raise DomainError(
            "as_of is not a date: %s" % message, code="invalid_query", errors=[FieldError("as_of", "invalid", message)]
        )
    return day


class ReceivablesReportApi(APIView):
    @extend_schema(
        operation_id="reports_receivables",
        description="Receivables aging per customer and in total, per currency, as of the end of a day in the "
        "tenant's time zone (default: today there), with DSO, collection rate and dunning recovery over the 90 "
        "days ending that day. Amounts owed are reconstructed for that day from the invoices finalized, credit "
        "notes and allocations recorded by then.",
        parameters=[OpenApiParameter("as_of", OpenApiTypes.DATE, description="YYYY-MM-DD; default today.")],
        responses={200: s.ReceivablesSerializer, **problems(400)},
    )
    def get(self, request: Request) -> Response:
        tenant = request_tenant(request)
        raw = request.query_params.get("as_of")
        if raw is None:
            as_of = local_date(timezone.now(), tenant.timezone)
        else:
            as_of = _as_of(raw)
        report = receivables_aging(tenant_id=tenant.pk, as_of=as_of)
        return Response(s.ReceivablesSerializer(report).data)
