from rest_framework import serializers

from billing_platform.api.serializers import StrictSerializer
from payments.policies import MAX_DAY, MIN_DAY, MIN_SUSPEND_AFTER_DAYS, SUSPEND_TOO_SOON

DAYS_HELP = "Whole days relative to the due date, sorted, each once"


class PolicySerializer(StrictSerializer):
    """A dunning policy. The rules across fields (sorted days, write-off no sooner than suspension)
    are checked by ``payments.policies.policy_validate``."""

    retry_days = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_DAY),
        max_length=30,
        help_text=DAYS_HELP + " (0 to %d): days after the due date a failed charge is tried again." % MAX_DAY,
    )
    reminder_days = serializers.ListField(
        child=serializers.IntegerField(min_value=MIN_DAY, max_value=MAX_DAY),
        max_length=30,
        help_text=DAYS_HELP + " (%d to %d; negative: before it): days a reminder e-mail goes out." % (MIN_DAY, MAX_DAY),
    )
    suspend_after_days = serializers.IntegerField(
        min_value=MIN_SUSPEND_AFTER_DAYS,
        max_value=MAX_DAY,
        allow_null=True,
        error_messages={"min_value": SUSPEND_TOO_SOON, "max_value": SUSPEND_TOO_SOON},
        help_text="Days past due (%d at the least) from which the invoice's subscriptions are suspended; they stay "
        "suspended while an open invoice billing them is that late; null: never." % MIN_SUSPEND_AFTER_DAYS,
    )
    uncollectible_after_days = serializers.IntegerField(
        min_value=0,
        max_value=MAX_DAY,
        allow_null=True,
        help_text="Days past due after which the invoice is written off as uncollectible; null: never.",
    )


class TenantPolicySerializer(PolicySerializer):
    bill_while_suspended = serializers.BooleanField(
        help_text="Whether bill runs still invoice suspended subscriptions."
    )
    pay_url = serializers.URLField(
        max_length=500,
        allow_blank=True,
        required=False,
        help_text="The payment page reminder e-mails link to; {invoice} is replaced by the invoice number.",
    )


class CustomerPolicySerializer(PolicySerializer):
    customer = serializers.CharField(read_only=True, help_text="The customer's external id.")


class _Ids(serializers.Serializer):
    reminders = serializers.ListField(child=serializers.UUIDField(), help_text="Invoices reminded")
    retries = serializers.ListField(child=serializers.UUIDField(), help_text="Invoices charged again")
    attempts = serializers.ListField(
        child=serializers.UUIDField(), help_text="Invoices charged again: the payment attempts made (as retries)"
    )
    overdue = serializers.ListField(child=serializers.UUIDField(), help_text="Invoices announced overdue")
    suspensions = serializers.ListField(child=serializers.UUIDField(), help_text="Subscriptions suspended")
    reactivations = serializers.ListField(child=serializers.UUIDField(), help_text="Subscriptions reactivated")
    write_offs = serializers.ListField(child=serializers.UUIDField(), help_text="Invoices written off")


class DunningReportSerializer(serializers.Serializer):
    reminders = serializers.IntegerField()
    retries = serializers.IntegerField(help_text="Invoices charged again")
    attempts = serializers.IntegerField(help_text="Payment attempts made: the invoices charged again (as retries)")
    overdue = serializers.IntegerField()
    suspensions = serializers.IntegerField()
    reactivations = serializers.IntegerField()
    write_offs = serializers.IntegerField()
    ids = _Ids()
