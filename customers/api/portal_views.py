"""The customer portal's doors in the API (specs/portal.md, "Who logs in"):

- portal links for tenants that embed the customer portal in their own app:
  ``POST /api/v1/customers/{id}/portal_sessions`` answers a single-use address, valid 15 minutes,
  that opens a portal session for that customer, as Stripe's billing portal sessions do;
- portal users: ``GET/POST /api/v1/customers/{id}/portal_users`` (a POST e-mails the invitation),
  ``PATCH/DELETE /api/v1/customers/{id}/portal_users/{user_id}``."""

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.idempotency import idempotent
from billing_platform.api.pagination import LIST_PARAMETERS, CursorPagination, paginated
from billing_platform.api.serializers import OutputModelSerializer, StrictSerializer, problems
from customers.models import PortalRole, PortalUser
from customers.portal import portal_link_create
from customers.portal_users import (
    portal_user_get,
    portal_user_invite,
    portal_user_list,
    portal_user_remove,
    portal_user_update,
)
from customers.selectors import customer_get
from tenancy.api import request_actor, request_tenant


class PortalSessionCreateApi(APIView):
    # The link's address carries its token: it is not kept with the request's Idempotency-Key, and a
    # replay answers ``url`` as null (ask again without the key for a new link).
    idempotency_redact = ("url",)

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
        url = serializers.URLField(
            allow_null=True,
            help_text="opens the portal once; send the customer's browser there. Shown once: null when the "
            "answer is replayed for the same Idempotency-Key",
        )
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


@extend_schema_serializer(component_name="PortalUser")
class PortalUserOutputSerializer(OutputModelSerializer):
    customer = serializers.SerializerMethodField(help_text="the customer's external id")
    has_password = serializers.SerializerMethodField(help_text="whether the user may log in with a password")
    two_factor = serializers.SerializerMethodField(help_text="whether the login asks for an authenticator's code")
    # Blank until the user picks one in the portal: the customer's language is used meanwhile.
    language = serializers.CharField(help_text="en or fr, chosen by the user; empty: the customer's language")

    class Meta:
        model = PortalUser
        fields = [
            "id",
            "customer",
            "email",
            "name",
            "role",
            "language",
            "is_active",
            "has_password",
            "two_factor",
            "invited_at",
            "last_login_at",
            "created_at",
        ]

    def get_customer(self, user: PortalUser) -> str:
        return user.customer.external_id

    def get_has_password(self, user: PortalUser) -> bool:
        return bool(user.password)

    def get_two_factor(self, user: PortalUser) -> bool:
        return bool(user.totp_secret)


class PortalUserListCreateApi(APIView):
    @extend_schema_serializer(component_name="PortalUserInput")
    class InputSerializer(StrictSerializer):
        # Checked by the service (one pass with the other fields' errors), hence not an EmailField.
        email = serializers.CharField(max_length=254, help_text="where the invitation is sent; the login's address")
        name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        role = serializers.ChoiceField(choices=PortalRole.choices, required=False, default=PortalRole.ADMIN)

    @extend_schema(
        operation_id="customers_portal_users_list",
        parameters=[*LIST_PARAMETERS],
        responses={200: paginated(PortalUserOutputSerializer, "PortalUserPage"), **problems(404, 422)},
    )
    def get(self, request: Request, external_id: str) -> Response:
        tenant = request_tenant(request)
        customer = customer_get(tenant=tenant, external_id=external_id)
        qs = portal_user_list(tenant=tenant, customer=customer).select_related("customer")
        paginator = CursorPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(PortalUserOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="customers_portal_users_create",
        request=InputSerializer,
        responses={201: PortalUserOutputSerializer, **problems(400, 404, 409, 422)},
        description="Makes the address a portal user of the customer and e-mails them an invitation "
        "(in the customer's language, valid 7 days, once). An address is one portal user per tenant: "
        "one already in use (for this customer or another) is a 409.",
    )
    @idempotent
    def post(self, request: Request, external_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = request_tenant(request)
        customer = customer_get(tenant=tenant, external_id=external_id)
        invited = portal_user_invite(
            tenant=tenant,
            customer=customer,
            actor=request_actor(request),
            at=timezone.now(),
            base_url=request.build_absolute_uri("/").rstrip("/"),
            **serializer.validated_data,
        )
        return Response(PortalUserOutputSerializer(invited.user).data, status=status.HTTP_201_CREATED)


class PortalUserDetailApi(APIView):
    @extend_schema_serializer(component_name="PortalUserUpdate")
    class UpdateSerializer(StrictSerializer):
        name = serializers.CharField(max_length=200, required=False, allow_blank=True)
        role = serializers.ChoiceField(choices=PortalRole.choices, required=False)
        is_active = serializers.BooleanField(
            required=False, help_text="false: the user can no longer log in, and their sessions end at once"
        )

    def _user(self, request: Request, external_id: str, user_id: str) -> PortalUser:
        tenant = request_tenant(request)
        customer = customer_get(tenant=tenant, external_id=external_id)
        user = portal_user_get(tenant=tenant, customer=customer, user_id=user_id)
        user.customer = customer
        return user

    @extend_schema(
        operation_id="customers_portal_users_update",
        request=UpdateSerializer,
        responses={200: PortalUserOutputSerializer, **problems(400, 404, 422)},
    )
    def patch(self, request: Request, external_id: str, user_id: str) -> Response:
        serializer = self.UpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = self._user(request, external_id, user_id)
        updated = portal_user_update(
            tenant=request_tenant(request),
            user=user,
            actor=request_actor(request),
            at=timezone.now(),
            **serializer.validated_data,
        )
        return Response(PortalUserOutputSerializer(updated).data)

    @extend_schema(
        operation_id="customers_portal_users_delete",
        request=None,
        responses={204: None, **problems(404)},
        description="Removes the portal user: their sessions end, and the address may be invited again.",
    )
    def delete(self, request: Request, external_id: str, user_id: str) -> Response:
        user = self._user(request, external_id, user_id)
        portal_user_remove(tenant=request_tenant(request), user=user, actor=request_actor(request), at=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)
