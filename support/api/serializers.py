from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing_platform.api.fields import ChoiceText, MoneyAmountField
from billing_platform.api.serializers import OutputModelSerializer, StrictSerializer
from invoicing.models import Invoice
from support.models import AuthorType, CaseStatus, SupportCase, SupportMessage


class CaseOpenInputSerializer(StrictSerializer):
    customer = serializers.CharField(max_length=200, help_text="the customer's external_id")
    subject = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=10000, help_text="the first message")
    invoice = serializers.CharField(
        max_length=64, required=False, allow_null=True, help_text="an invoice of the customer: its id or number"
    )
    assignee = serializers.EmailField(
        required=False, allow_null=True, help_text="the e-mail of a member of the tenant's team"
    )
    author_type = ChoiceText(
        choices=AuthorType.choices,
        required=False,
        default=AuthorType.STAFF,
        help_text="who the first message is from: staff (the default), or the customer when relayed",
    )


class CaseUpdateInputSerializer(StrictSerializer):
    status = ChoiceText(choices=CaseStatus.choices, required=False)
    assignee = serializers.EmailField(
        required=False, allow_null=True, help_text="a member of the tenant's team by e-mail; null unassigns"
    )


class MessageInputSerializer(StrictSerializer):
    body = serializers.CharField(max_length=10000, trim_whitespace=False)
    author_type = ChoiceText(
        choices=AuthorType.choices,
        required=False,
        default=AuthorType.STAFF,
        help_text="staff (the default), or customer for a customer's message relayed by the tenant",
    )


class MessageOutputSerializer(OutputModelSerializer):
    author_type = serializers.ChoiceField(choices=AuthorType.choices)

    class Meta:
        model = SupportMessage
        fields = ["id", "author_type", "author_label", "body", "at"]


class CreditNoteLinkSerializer(OutputModelSerializer):
    total = MoneyAmountField()

    class Meta:
        model = Invoice
        fields = ["id", "number", "total", "currency", "issue_date"]


class OpenedBySerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=AuthorType.choices, source="opened_by_type")
    label = serializers.CharField(source="opened_by_label")  # type: ignore[assignment]  # a field named as the JSON says


class CaseOutputSerializer(OutputModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    invoice = serializers.UUIDField(source="invoice_id", allow_null=True)
    invoice_number = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=CaseStatus.choices)
    assignee = serializers.SerializerMethodField()
    opened_by = OpenedBySerializer(source="*")
    overdue = serializers.BooleanField(help_text="no staff answer yet, past the tenant's first-response target")
    message_count = serializers.IntegerField()

    class Meta:
        model = SupportCase
        fields = [
            "id",
            "customer",
            "subject",
            "invoice",
            "invoice_number",
            "status",
            "assignee",
            "opened_by",
            "created_at",
            "last_message_at",
            "first_response_at",
            "resolved_at",
            "overdue",
            "message_count",
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_invoice_number(self, case: SupportCase) -> str | None:
        return case.invoice.number or None if case.invoice is not None else None

    @extend_schema_field(serializers.EmailField(allow_null=True))
    def get_assignee(self, case: SupportCase) -> str | None:
        return case.assignee.email if case.assignee is not None else None


class CaseDetailOutputSerializer(CaseOutputSerializer):
    messages = serializers.SerializerMethodField()
    credit_notes = serializers.SerializerMethodField()

    class Meta(CaseOutputSerializer.Meta):
        fields = [*CaseOutputSerializer.Meta.fields, "messages", "credit_notes"]

    @extend_schema_field(MessageOutputSerializer(many=True))
    def get_messages(self, case: SupportCase) -> Any:
        return MessageOutputSerializer(case.messages.order_by("at", "id"), many=True).data

    @extend_schema_field(CreditNoteLinkSerializer(many=True))
    def get_credit_notes(self, case: SupportCase) -> Any:
        notes = [link.credit_note for link in case.credit_note_links.select_related("credit_note")]
        return CreditNoteLinkSerializer(notes, many=True).data
