from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.validators import RegexValidator
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_platform.api.fields import CountryField, CurrencyField, MetadataField, MoneyAmount, TimezoneField
from billing_platform.api.idempotency import idempotent
from billing_platform.api.pagination import LIST_PARAMETERS, CursorPagination, paginated
from billing_platform.api.serializers import OutputModelSerializer, StrictSerializer, problems
from billing_platform.errors import FieldError, InvalidInput, invalid
from customers.errors import CustomerCountryConflict
from customers.models import Collection, Customer, Language, Partner
from customers.partners import partner_for_reseller
from customers.selectors import customer_list, customer_shown_get
from customers.services import EXTERNAL_ID_MESSAGE, EXTERNAL_ID_RE, customer_create, customer_update, tax_id_errors
from tenancy.api import request_actor, request_tenant
from tenancy.models import Tenant


class CustomerAddressSerializer(serializers.Serializer):
    """The customer's postal address (EN 16931 BG-8); blank lines are empty strings."""

    line1 = serializers.CharField(source="address_line1")
    line2 = serializers.CharField(source="address_line2")
    postal_code = serializers.CharField()
    city = serializers.CharField()
    country = serializers.CharField()


class CustomerAddressInputSerializer(StrictSerializer):
    """A postal address, whole or in part: a PATCH changes the lines it names and keeps the others.
    ``country`` is the customer's ``country``."""

    line1 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    line2 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    postal_code = serializers.CharField(max_length=16, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    country = CountryField(required=False)


# The address's lines by their names in the API and in the services.
ADDRESS_LINES = (
    ("line1", "address_line1"),
    ("line2", "address_line2"),
    ("postal_code", "postal_code"),
    ("city", "city"),
)


def address_flattened(data: dict[str, Any]) -> dict[str, Any]:
    """The request's fields with ``address`` spread into the services' fields (``address_line1``…);
    ``address.country`` becomes ``country``. Both countries given and different: a 400 naming
    ``address.country``, rather than one of them silently winning."""
    fields = dict(data)
    address: dict[str, Any] = fields.pop("address", None) or {}
    if "country" in address:
        country = address["country"]
        if "country" in fields and fields["country"].upper() != country.upper():
            message = "address.country (%s) and country (%s) differ: give one of them, or the same." % (
                country,
                fields["country"],
            )
            raise CustomerCountryConflict(
                message, errors=[FieldError("address.country", CustomerCountryConflict.code, message)]
            )
        fields["country"] = country
    for name, field in ADDRESS_LINES:
        if name in address:
            fields[field] = address[name]
    return fields


@contextmanager
def country_errors_named_as_sent(data: dict[str, Any]) -> Iterator[None]:
    """A country given as ``address.country`` only has its errors (``unknown_country``) named so."""
    try:
        yield
    except InvalidInput as exc:
        if "country" in data or "country" not in (data.get("address") or {}):
            raise
        exc.errors = [
            FieldError("address.country", e.code, e.message) if e.field == "country" else e for e in exc.errors
        ]
        raise


class CustomerDunningPolicySerializer(serializers.Serializer):
    """The customer's own dunning policy (payments.md): days relative to the due date."""

    retry_days = serializers.ListField(
        child=serializers.IntegerField(), help_text="days after the due date a failed charge is tried again"
    )
    reminder_days = serializers.ListField(
        child=serializers.IntegerField(), help_text="days a reminder e-mail goes out (negative: before the due date)"
    )
    suspend_after_days = serializers.IntegerField(
        allow_null=True, help_text="days past due from which the invoice's subscriptions are suspended; null: never"
    )
    uncollectible_after_days = serializers.IntegerField(
        allow_null=True, help_text="days past due from which the invoice is written off; null: never"
    )


class CustomerOutputSerializer(OutputModelSerializer):
    address = CustomerAddressSerializer(source="*")
    collection = serializers.ChoiceField(choices=Collection.choices)
    balance = MoneyAmount(
        "balance", help_text="credit the customer holds, in its currency, applied to its next invoices"
    )
    dunning_policy = serializers.SerializerMethodField(
        help_text="the customer's own dunning policy, replacing the tenant's for its invoices; null: it follows "
        "the tenant's (GET /api/v1/dunning_policy). Read-only here: set it with "
        "PUT /api/v1/customers/{external_id}/dunning_policy, remove it with DELETE on the same path."
    )

    partner = serializers.SerializerMethodField(
        help_text="the code of the partner (reseller) that sold to the customer and earns commission on what it "
        "pays; null: a direct customer"
    )
    reseller = serializers.SerializerMethodField(
        help_text="Deprecated: read partner. The partner's code, or an empty string for a direct customer."
    )

    @extend_schema_field({"type": "string", "nullable": True, "maxLength": 100})
    def get_partner(self, customer: Customer) -> str | None:
        return customer.partner.code if customer.partner is not None else None

    @extend_schema_field({"type": "string", "maxLength": 100, "deprecated": True})
    def get_reseller(self, customer: Customer) -> str:
        return customer.partner.code if customer.partner is not None else ""

    @extend_schema_field(CustomerDunningPolicySerializer(allow_null=True))
    def get_dunning_policy(self, customer: Customer) -> dict[str, Any] | None:
        # The payments app's policy, read through its one-to-one relation (payments sits above
        # customers: no import of it here); the customer list loads it with the customers.
        try:
            policy = getattr(customer, "dunning_policy")  # noqa: B009
        except ObjectDoesNotExist:
            return None
        return dict(CustomerDunningPolicySerializer(policy).data)

    class Meta:
        model = Customer
        fields = [
            "id",
            "external_id",
            "name",
            "email",
            "currency",
            "timezone",
            "language",
            "country",
            "tax_id",
            "address",
            "billing_day",
            "partner",
            "reseller",
            "collection",
            "payment_terms_days",
            "balance",
            "dunning_policy",
            "metadata",
            "created_at",
            "updated_at",
        ]


class LanguageField(serializers.ChoiceField):
    """The language of the customer's invoices and e-mails."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Language.choices, **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError:
            raise serializers.ValidationError(
                "Language must be one of: %s." % ", ".join(Language.values), code="unsupported_language"
            ) from None


class _CustomerFields(StrictSerializer):
    """Every field is checked in one pass, the tax id against the country included: one answer
    lists every error of the request (a bad e-mail no longer hides an unknown country or a VAT typo)."""

    def to_internal_value(self, data: Any) -> Any:
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            detail = exc.detail
            if isinstance(detail, dict) and isinstance(data, dict) and not {"tax_id", "country"} & set(detail):
                detail.update(_tax_id_detail(data))
            raise serializers.ValidationError(detail) from None
        tax_id_detail = _tax_id_detail(data)
        if tax_id_detail:
            raise serializers.ValidationError(tax_id_detail)
        return value


def _tax_id_detail(data: dict[str, Any]) -> dict[str, Any]:
    tax_id, country = data.get("tax_id"), data.get("country")
    if not isinstance(tax_id, str) or not isinstance(country, str):
        return {}  # on PATCH the service checks the tax id against the stored country
    return {
        e.field: [serializers.ErrorDetail(e.message, code=e.code)]
        for e in tax_id_errors(tax_id=tax_id, country=country.upper())
    }


class PartnerCodeField(serializers.CharField):
    """A partner of the tenant by its code; null: a direct customer."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text",
            "the code of the partner (reseller) that sold to the customer and earns commission on what it pays "
            "(GET /api/v1/partners); null: a direct customer",
        )
        super().__init__(max_length=100, required=False, allow_null=True, **kwargs)


@extend_schema_field(
    {
        "type": "string",
        "maxLength": 100,
        "deprecated": True,
        "description": "Deprecated: give partner. A partner's code, else a partner's name (in any case); a name no "
        "partner has makes a new partner of that name (its commission plan earns nothing until set). Empty: a "
        "direct customer.",
    }
)
class ResellerField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=100, required=False, allow_blank=True, **kwargs)


def partner_resolved(request: Request, data: dict[str, Any]) -> dict[str, Any]:
    """The request's fields with ``partner`` (a code) and the deprecated ``reseller`` replaced by
    ``partner`` as the services take it: a ``Partner`` of the tenant, or None. Neither given: no
    ``partner`` (a PATCH leaves it as it is). Both: the same partner, or a 422."""
    fields = dict(data)
    has_partner, has_reseller = "partner" in fields, "reseller" in fields
    code = fields.pop("partner", None)
    reseller = fields.pop("reseller", None)
    tenant = request_tenant(request)
    if has_partner:
        partner = _partner_by_code(tenant, code)
        if has_reseller and (reseller or "").strip() and (partner is None or reseller.strip() != partner.code):
            raise invalid(
                "reseller",
                "conflicts_with_partner",
                "reseller is deprecated and names another partner than partner: give partner only.",
            )
        fields["partner"] = partner
    elif has_reseller:
        fields["partner"] = partner_for_reseller(
            tenant=tenant, reseller=reseller or "", actor=request_actor(request), at=timezone.now()
        )
    return fields


def _partner_by_code(tenant: Tenant, code: str | None) -> Partner | None:
    if code is None:
        return None
    partner = Partner.objects.filter(tenant=tenant, code=code).first()
    if partner is None:
        raise invalid("partner", "unknown_partner", "No partner with code %s." % code)
    return partner


class CustomerListCreateApi(APIView):
    @extend_schema_serializer(component_name="CustomerInput")
    class InputSerializer(_CustomerFields):
        external_id = serializers.CharField(
            max_length=200,
            validators=[RegexValidator(EXTERNAL_ID_RE, EXTERNAL_ID_MESSAGE, code="invalid_format")],
            help_text="your own id, used in paths: letters, digits and . _ : @ -, starting with a letter or digit",
        )
        name = serializers.CharField(max_length=200)
        email = serializers.EmailField(max_length=254)
        country = CountryField(
            required=False,
            help_text="ISO 3166-1 alpha-2; required, here or as address.country (the same country if both).",
        )
        currency = CurrencyField(required=False, help_text="default: the tenant's")
        timezone = TimezoneField(required=False, help_text="default: the tenant's")
        language = LanguageField(required=False, default="en")
        tax_id = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
        address = CustomerAddressInputSerializer(required=False)
        billing_day = serializers.IntegerField(min_value=1, max_value=31, required=False, allow_null=True)
        partner = PartnerCodeField()
        reseller = ResellerField()
        collection = serializers.ChoiceField(
            choices=Collection.choices, required=False, help_text="default: the tenant's default collection"
        )
        payment_terms_days = serializers.IntegerField(
            min_value=0,
            max_value=365,
            required=False,
            allow_null=True,
            help_text="days from issue to due date; null: the tenant's (0 when charged automatically)",
        )
        metadata = MetadataField(required=False, default=dict)

    @extend_schema(
        operation_id="customers_list",
        parameters=[
            OpenApiParameter("q", str, description="Search in name, external_id and email"),
            OpenApiParameter("currency", str),
            OpenApiParameter("country", str),
            *LIST_PARAMETERS,
        ],
        responses={200: paginated(CustomerOutputSerializer, "CustomerPage"), **problems(422)},
    )
    def get(self, request: Request) -> Response:
        qs = customer_list(
            tenant=request_tenant(request),
            search=request.query_params.get("q"),
            currency=request.query_params.get("currency"),
            country=request.query_params.get("country"),
        )
        paginator = CursorPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(CustomerOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="customers_create",
        request=InputSerializer,
        responses={201: CustomerOutputSerializer, **problems(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = partner_resolved(request, address_flattened(serializer.validated_data))
        if "country" not in fields:
            raise invalid("country", "required", "Give the customer's country, as country or address.country.")
        with country_errors_named_as_sent(serializer.validated_data):
            customer = customer_create(
                tenant=request_tenant(request),
                actor=request_actor(request),
                at=timezone.now(),
                **fields,
            )
        return Response(CustomerOutputSerializer(customer).data, status=status.HTTP_201_CREATED)


class CustomerDetailApi(APIView):
    @extend_schema_serializer(component_name="CustomerPatch")
    class PatchSerializer(_CustomerFields):
        name = serializers.CharField(max_length=200, required=False)
        email = serializers.EmailField(max_length=254, required=False)
        country = CountryField(required=False)
        currency = CurrencyField(required=False)
        timezone = TimezoneField(required=False)
        language = LanguageField(required=False)
        tax_id = serializers.CharField(max_length=32, required=False, allow_blank=True)
        address = CustomerAddressInputSerializer(required=False)
        billing_day = serializers.IntegerField(min_value=1, max_value=31, required=False, allow_null=True)
        partner = PartnerCodeField()
        reseller = ResellerField()
        collection = serializers.ChoiceField(choices=Collection.choices, required=False)
        payment_terms_days = serializers.IntegerField(min_value=0, max_value=365, required=False, allow_null=True)
        metadata = MetadataField(required=False, removals=True)

    @extend_schema(operation_id="customers_retrieve", responses={200: CustomerOutputSerializer, **problems(404)})
    def get(self, request: Request, external_id: str) -> Response:
        customer = customer_shown_get(tenant=request_tenant(request), external_id=external_id)
        return Response(CustomerOutputSerializer(customer).data)

    @extend_schema(
        operation_id="customers_update",
        request=PatchSerializer,
        responses={200: CustomerOutputSerializer, **problems(400, 404, 409, 422)},
    )
    def patch(self, request: Request, external_id: str) -> Response:
        serializer = self.PatchSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = partner_resolved(request, address_flattened(serializer.validated_data))
        with country_errors_named_as_sent(serializer.validated_data):
            customer = customer_update(
                tenant=request_tenant(request),
                actor=request_actor(request),
                at=timezone.now(),
                external_id=external_id,
                changes=changes,
            )
        return Response(CustomerOutputSerializer(customer).data)
