from rest_framework import serializers

from billing_platform.api.fields import MoneyAmountField
from billing_platform.api.serializers import OutputModelSerializer, StrictSerializer
from payments.models import GatewayCustomer, PaymentAttempt


class AttemptOutputSerializer(OutputModelSerializer):
    invoice = serializers.UUIDField(source="invoice_id")
    amount = MoneyAmountField()

    class Meta:
        model = PaymentAttempt
        fields = [
            "id",
            "invoice",
            "number",
            "status",
            "amount",
            "currency",
            "gateway_id",
            "failure_code",
            "failure_message",
            "next_retry_at",
            "created_at",
        ]


class PaymentMethodInputSerializer(StrictSerializer):
    payment_method = serializers.RegexField(
        r"^pm_[A-Za-z0-9_]{1,250}$", help_text="a Stripe PaymentMethod id (`pm_…`) of the tenant's account"
    )


class PaymentMethodOutputSerializer(OutputModelSerializer):
    customer = serializers.CharField(source="customer.external_id")
    gateway_customer = serializers.CharField(source="gateway_customer_id")
    payment_method = serializers.CharField(source="default_payment_method")
    summary = serializers.CharField(source="payment_method_summary", help_text='e.g. "visa •••• 4242"')

    class Meta:
        model = GatewayCustomer
        fields = ["customer", "gateway", "gateway_customer", "payment_method", "summary"]


class StripeEventOutputSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="the Stripe event id")
    type = serializers.CharField()
    duplicate = serializers.BooleanField(help_text="true when this event id was received before")
