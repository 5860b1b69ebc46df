"""The partners API's shapes (specs/partners.md, "API"): partners with their commission plan, their
users and their API keys."""

from typing import Any

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from billing_platform.api.fields import CountryField, CurrencyField
from billing_platform.api.serializers import OutputModelSerializer, StrictSerializer
from customers.api.views import LanguageField
from customers.models import Partner, PartnerStatus
from partners.models import PartnerRole, PartnerUser
from partners.plans import commission_plan_normalize
from tenancy.models import ApiKey

# A leg's rate: a percentage as a string, or tiers graduated by the partner's net collected on the
# leg in the month.
LEG_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "pattern": r"^\d{1,3}(\.\d+)?$", "example": "20", "description": "a percentage, 0 to 100"},
        {
            "type": "object",
            "description": "graduated by the partner's net collected on the leg in the month: each part of it at "
            "its tier's rate",
            "properties": {
                "tiers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "up_to": {
                                "type": "string",
                                "nullable": True,
                                "example": "10000.00",
                                "description": "the tier's inclusive upper bound; null for the last tier",
                            },
                            "rate": {"type": "string", "example": "20", "description": "a percentage, 0 to 100"},
                        },
                        "required": ["up_to", "rate"],
                        "additionalProperties": False,
                    },
                }
            },
            "required": ["tiers"],
            "additionalProperties": False,
        },
    ]
}
LEGS = ("hardware", "service", "usage", "fee")
# A partner user's language; empty: the partner's.
USER_LANGUAGES = [("", ""), ("en", "en"), ("fr", "fr")]


def _plan_schema(required: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": dict.fromkeys(LEGS, LEG_SCHEMA),
        "additionalProperties": False,
        "description": "a rate per leg, as a percentage of the net amounts collected"
        + ("" if required else "; a leg left out earns nothing"),
        "example": {"hardware": "5", "service": "20", "usage": "10", "fee": "0"},
    }
    if required:
        schema["required"] = list(LEGS)
    return schema


@extend_schema_field(_plan_schema(required=False))
class CommissionPlanInputField(serializers.JSONField):
    """Checked whole by the service (``partners.plans``): every wrong leg or tier named."""


@extend_schema_field(_plan_schema(required=True))
class CommissionPlanField(serializers.JSONField):
    """The plan normalized: every leg present (a plan stored empty, as migrated resellers' are,
    reads as four legs that earn nothing)."""

    def to_representation(self, value: Any) -> Any:
        return commission_plan_normalize(value or {})


@extend_schema_serializer(component_name="Partner")
class PartnerOutputSerializer(OutputModelSerializer):
    email = serializers.CharField(help_text="the partner's contact address; empty: none")
    commission_plan = CommissionPlanField(help_text='every leg, normalized: a leg that earns nothing is "0"')
    price_book = serializers.CharField(help_text="the price book its customers are priced from; empty: none")
    customers_count = serializers.SerializerMethodField(help_text="customers assigned to the partner")

    class Meta:
        model = Partner
        fields = [
            "code",
            "name",
            "email",
            "country",
            "currency",
            "language",
            "commission_plan",
            "price_book",
            "status",
            "customers_count",
            "created_at",
            "updated_at",
        ]

    def get_customers_count(self, partner: Partner) -> int:
        count = getattr(partner, "customers_count", None)
        if count is None:
            count = partner.customers.count()
        return int(count)


@extend_schema_serializer(component_name="PartnerInput")
class PartnerInputSerializer(StrictSerializer):
    code = serializers.CharField(
        max_length=100,
        help_text="your own id, used in paths: letters, digits and . _ -, starting with a letter or digit",
    )
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")
    country = CountryField(required=False, help_text="ISO 3166-1 alpha-2")
    currency = CurrencyField(required=False, help_text="of its commission and statements; default: the tenant's")
    language = LanguageField(required=False, default="en", help_text="of its statements and its users' e-mails")
    commission_plan = CommissionPlanInputField(required=False)
    price_book = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default="", help_text="a price book's code; empty: none"
    )


@extend_schema_serializer(component_name="PartnerPatch")
class PartnerPatchSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    country = CountryField(required=False)
    currency = CurrencyField(required=False, help_text="only while the partner has no commission statement")
    language = LanguageField(required=False)
    commission_plan = CommissionPlanInputField(
        required=False, help_text="the whole plan, replacing the current one; a leg left out earns nothing"
    )
    price_book = serializers.CharField(max_length=64, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=PartnerStatus.choices, required=False)


@extend_schema_serializer(component_name="PartnerUser")
class PartnerUserOutputSerializer(OutputModelSerializer):
    partner = serializers.SerializerMethodField(help_text="the partner's code")
    language = serializers.CharField(help_text="en or fr; empty: the partner's language")
    has_password = serializers.SerializerMethodField(help_text="whether the user may log in with a password")
    two_factor = serializers.SerializerMethodField(help_text="whether the login asks for an authenticator's code")

    class Meta:
        model = PartnerUser
        fields = [
            "id",
            "partner",
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

    def get_partner(self, user: PartnerUser) -> str:
        return user.partner.code

    def get_has_password(self, user: PartnerUser) -> bool:
        return bool(user.password)

    def get_two_factor(self, user: PartnerUser) -> bool:
        return bool(user.totp_secret)


@extend_schema_serializer(component_name="PartnerUserInput")
class PartnerUserInputSerializer(StrictSerializer):
    # Checked by the service (one pass with the other fields' errors), hence not an EmailField.
    email = serializers.CharField(max_length=254, help_text="where the invitation is sent; the login's address")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=PartnerRole.choices, required=False, default=PartnerRole.SALES)
    language = serializers.ChoiceField(
        choices=USER_LANGUAGES,
        required=False,
        default="",
        help_text="of the user's e-mails; empty: the partner's",
    )


@extend_schema_serializer(component_name="PartnerUserUpdate")
class PartnerUserUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=PartnerRole.choices, required=False)
    language = serializers.ChoiceField(choices=USER_LANGUAGES, required=False)
    is_active = serializers.BooleanField(
        required=False, help_text="false: the user can no longer log in, and their sessions end at once"
    )


@extend_schema_serializer(component_name="PartnerApiKey")
class PartnerApiKeyOutputSerializer(OutputModelSerializer):
    partner = serializers.SerializerMethodField(help_text="the partner's code")
    prefix = serializers.CharField(help_text="the key's visible start, to tell keys apart")

    class Meta:
        model = ApiKey
        fields = ["id", "partner", "name", "scope", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_partner(self, key: ApiKey) -> str:
        return key.partner.code if key.partner is not None else ""


@extend_schema_serializer(component_name="PartnerApiKeyCreated")
class PartnerApiKeyCreatedSerializer(PartnerApiKeyOutputSerializer):
    # Set on the instance by the view; never read back from the database (only its hash is kept).
    key = serializers.CharField(
        allow_null=True,
        help_text="the key itself, shown this once (only its hash is kept); null when the answer is replayed for "
        "the same Idempotency-Key",
    )

    class Meta(PartnerApiKeyOutputSerializer.Meta):
        fields = [*PartnerApiKeyOutputSerializer.Meta.fields, "key"]


@extend_schema_serializer(component_name="PartnerApiKeyInput")
class PartnerApiKeyInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100, help_text="what uses the key, e.g. the partner's shop")
