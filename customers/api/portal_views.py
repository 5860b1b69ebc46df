"""Portal links for tenants that embed the customer portal in their own app (specs/portal.md):
``POST /api/v1/customers/{id}/portal_sessions`` answers a single-use address, valid 15 minutes,
that opens a portal session for that customer, as Stripe's billing portal sessions do."""

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.idempotency import idempotent
from billing_platform.api.serializers import StrictSerializer, problems
from customers.portal import portal_link_create
from customers.selectors import customer_get
from tenancy.api import request_actor, request_tenant


class PortalSessionCreateApi(APIView):
    class InputSerializer(StrictSerializer):
        return_url = serializers.CharField(
            max_length=2000,
            required=False,
            allow_blank=True,
            default="",
            help_text="where the portal's 'Back' link leads: an absolute http(s) address in your app",
        )

    class OutputSerializer(serializers.Serializer):
        customer = serializers.CharField(help_text="the customer's external id")
        url = serializers.URLField(help_text="opens the portal once; send the customer's browser there")
        expires_at = serializers.DateTimeField(help_text="15 minutes after creation; unused by then, it opens nothing")
        return_url = serializers.CharField()

    @extend_schema(
        operation_id="customers_portal_sessions_create",
        request=InputSerializer,
        responses={201: OutputSerializer, **problems(400, 404, 422)},
    )
    @idempotent
    def post(self, request: Request, external_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = request_tenant(request)
        customer = customer_get(tenant=tenant, external_id=external_id)
        created = portal_link_create(
            tenant=tenant,
            customer=customer,
            return_url=serializer.validated_data["return_url"],
            actor=request_actor(request),
            at=timezone.now(),
        )
        body = {
            "customer": customer.external_id,
            "url": request.build_absolute_uri(reverse("portal:link", args=[created.token])),
            "expires_at": created.link.expires_at,
            "return_url": created.link.return_url,
        }
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)
