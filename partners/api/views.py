"""The partners API for the tenant's staff (specs/partners.md, "API"), with a key of scope ``full``:

- ``GET/POST /api/v1/partners``, ``GET/PATCH /api/v1/partners/{code}``: partners and their
  commission plans;
- ``GET/POST /api/v1/partners/{code}/users``, ``PATCH/DELETE /api/v1/partners/{code}/users/{id}``:
  the people who log in to the partner dashboard (a POST e-mails the invitation);
- ``GET/POST /api/v1/partners/{code}/api_keys``, ``DELETE /api/v1/partners/{code}/api_keys/{id}``:
  the partner's own API keys (scope ``partner``), which reach only ``/api/v1/partner/...``."""

import uuid
from typing import Any

from django.db.models import Count, QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.idempotency import idempotent
from billing_platform.api.pagination import LIST_PARAMETERS, CursorPagination, paginated
from billing_platform.api.serializers import problems
from billing_platform.errors import invalid
from customers.models import Partner, PartnerStatus
from customers.partners import partner_get, partner_list
from partners.api import serializers as s
from partners.models import PartnerUser
from partners.services import partner_create, partner_update
from partners.users import (
    partner_user_get,
    partner_user_invite,
    partner_user_list,
    partner_user_remove,
    partner_user_update,
)
from tenancy.api import request_actor, request_tenant
from tenancy.errors import ApiKeyNotFound
from tenancy.models import ApiKey, ApiKeyScope
from tenancy.services import api_key_create, api_key_revoke


def _counted(qs: QuerySet[Partner]) -> QuerySet[Partner]:
    return qs.annotate(customers_count=Count("customers"))


def _partner(request: Request, code: str) -> Partner:
    tenant = request_tenant(request)
    partner = _counted(Partner.objects.filter(tenant=tenant, code=code)).first()
    if partner is None:
        partner_get(tenant=tenant, code=code)  # raises the API's 404
    assert partner is not None
    return partner


class PartnerListCreateApi(APIView):
    @extend_schema(
        operation_id="partners_list",
        description="The tenant's partners (resellers, integrators, distributors), newest first.",
        parameters=[OpenApiParameter("status", str, enum=PartnerStatus.values), *LIST_PARAMETERS],
        responses={200: paginated(s.PartnerOutputSerializer, "PartnerPage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        status_filter = request.query_params.get("status") or None
        if status_filter is not None and status_filter not in PartnerStatus.values:
            raise invalid("status", "invalid_choice", "status is one of: %s." % ", ".join(PartnerStatus.values))
        qs = _counted(partner_list(tenant=request_tenant(request), status=status_filter))
        paginator = CursorPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(s.PartnerOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="partners_create",
        description="A new active partner. Its commission plan is a rate per leg (`hardware`, `service`, `usage`, "
        "`fee`) as a percentage of the net amounts its customers pay, or tiers graduated by the month's collected "
        "net; a leg left out earns nothing. A code already used is a 409.",
        request=s.PartnerInputSerializer,
        responses={201: s.PartnerOutputSerializer, **problems(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        serializer = s.PartnerInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = request_tenant(request)
        partner = partner_create(
            tenant=tenant, actor=request_actor(request), at=timezone.now(), **serializer.validated_data
        )
        return Response(s.PartnerOutputSerializer(_partner(request, partner.code)).data, status=status.HTTP_201_CREATED)


class PartnerDetailApi(APIView):
    @extend_schema(operation_id="partners_retrieve", responses={200: s.PartnerOutputSerializer, **problems(404)})
    def get(self, request: Request, code: str) -> Response:
        return Response(s.PartnerOutputSerializer(_partner(request, code)).data)

    @extend_schema(
        operation_id="partners_update",
        description="Change the fields given. `commission_plan` replaces the whole plan; the currency changes "
        "only while the partner has no commission statement. An inactive partner's users cannot log in.",
        request=s.PartnerPatchSerializer,
        responses={200: s.PartnerOutputSerializer, **problems(400, 404, 422)},
    )
    def patch(self, request: Request, code: str) -> Response:
        serializer = s.PartnerPatchSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        partner_update(
            tenant=request_tenant(request),
            actor=request_actor(request),
            at=timezone.now(),
            code=code,
            changes=dict(serializer.validated_data),
        )
        return Response(s.PartnerOutputSerializer(_partner(request, code)).data)


class PartnerUserListCreateApi(APIView):
    @extend_schema(
        operation_id="partners_users_list",
        parameters=[*LIST_PARAMETERS],
        responses={200: paginated(s.PartnerUserOutputSerializer, "PartnerUserPage"), **problems(404, 422)},
    )
    def get(self, request: Request, code: str) -> Response:
        tenant = request_tenant(request)
        partner = partner_get(tenant=tenant, code=code)
        qs = partner_user_list(tenant=tenant, partner=partner).select_related("partner")
        paginator = CursorPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(s.PartnerUserOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="partners_users_create",
        description="Makes the address a user of the partner and e-mails them an invitation to the partner "
        "dashboard (in their language, else the partner's; valid 7 days, once). An address is one partner user "
        "per tenant, in any case: one already in use (for this partner or another) is a 409.",
        request=s.PartnerUserInputSerializer,
        responses={201: s.PartnerUserOutputSerializer, **problems(400, 404, 409, 422)},
    )
    @idempotent
    def post(self, request: Request, code: str) -> Response:
        serializer = s.PartnerUserInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = request_tenant(request)
        partner = partner_get(tenant=tenant, code=code)
        invited = partner_user_invite(
            tenant=tenant,
            partner=partner,
            actor=request_actor(request),
            at=timezone.now(),
            base_url=request.build_absolute_uri("/").rstrip("/"),
            **serializer.validated_data,
        )
        return Response(s.PartnerUserOutputSerializer(invited.user).data, status=status.HTTP_201_CREATED)


class PartnerUserDetailApi(APIView):
    def _user(self, request: Request, code: str, user_id: str) -> PartnerUser:
        tenant = request_tenant(request)
        partner = partner_get(tenant=tenant, code=code)
        return partner_user_get(tenant=tenant, partner=partner, user_id=user_id)

    @extend_schema(
        operation_id="partners_users_update",
        request=s.PartnerUserUpdateSerializer,
        responses={200: s.PartnerUserOutputSerializer, **problems(400, 404, 422)},
    )
    def patch(self, request: Request, code: str, user_id: str) -> Response:
        serializer = s.PartnerUserUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = self._user(request, code, user_id)
        updated = partner_user_update(
            tenant=request_tenant(request),
            user=user,
            actor=request_actor(request),
            at=timezone.now(),
            **serializer.validated_data,
        )
        return Response(s.PartnerUserOutputSerializer(updated).data)

    @extend_schema(
        operation_id="partners_users_delete",
        request=None,
        responses={204: None, **problems(404)},
        description="Removes the user's access: they are deactivated (their history stays; PATCH `is_active: true` "
        "gives it back), their sessions end and their pending invitation no longer works.",
    )
    def delete(self, request: Request, code: str, user_id: str) -> Response:
        user = self._user(request, code, user_id)
        partner_user_remove(tenant=request_tenant(request), user=user, actor=request_actor(request), at=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)


class PartnerApiKeyListCreateApi(APIView):
    # The key is shown once: it is not kept with the request's Idempotency-Key, and a replay answers
    # ``key`` as null (revoke that key and create another).
    idempotency_redact = ("key",)

    @extend_schema(
        operation_id="partners_api_keys_list",
        description="The partner's API keys, revoked ones included, newest first.",
        parameters=[*LIST_PARAMETERS],
        responses={200: paginated(s.PartnerApiKeyOutputSerializer, "PartnerApiKeyPage"), **problems(404, 422)},
    )
    def get(self, request: Request, code: str) -> Response:
        tenant = request_tenant(request)
        partner = partner_get(tenant=tenant, code=code)
        qs = ApiKey.objects.filter(tenant=tenant, partner=partner).select_related("partner")
        paginator = CursorPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(s.PartnerApiKeyOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="partners_api_keys_create",
        description="A key for the partner's own systems, of scope `partner`: it reaches only the "
        "`/api/v1/partner/...` routes, for the partner's customers. The key is in this answer only.",
        request=s.PartnerApiKeyInputSerializer,
        responses={201: s.PartnerApiKeyCreatedSerializer, **problems(400, 404, 422)},
    )
    @idempotent
    def post(self, request: Request, code: str) -> Response:
        serializer = s.PartnerApiKeyInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = request_tenant(request)
        partner = partner_get(tenant=tenant, code=code)
        api_key, key = api_key_create(
            tenant=tenant,
            name=serializer.validated_data["name"],
            scope=ApiKeyScope.PARTNER,
            actor=request_actor(request),
            at=timezone.now(),
            partner=partner,
        )
        created: Any = api_key
        created.key = key
        return Response(s.PartnerApiKeyCreatedSerializer(created).data, status=status.HTTP_201_CREATED)


class PartnerApiKeyDetailApi(APIView):
    @extend_schema(
        operation_id="partners_api_keys_delete",
        request=None,
        responses={204: None, **problems(404, 409)},
        description="Revokes the key at once: requests with it are refused from now on. A key already revoked "
        "is a 409.",
    )
    def delete(self, request: Request, code: str, key_id: str) -> Response:
        tenant = request_tenant(request)
        partner = partner_get(tenant=tenant, code=code)
        try:
            known = ApiKey.objects.filter(tenant=tenant, partner=partner, pk=uuid.UUID(key_id)).exists()
        except ValueError:
            known = False
        if not known:
            raise ApiKeyNotFound("No API key %s for this partner." % key_id)
        api_key_revoke(tenant=tenant, key_id=key_id, actor=request_actor(request), at=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)
