"""The revenue reports, a contract's schedules and the journal as the API writes them: amounts as
strings at the currency's minor unit next to their ``currency``, months as ``YYYY-MM``."""

from datetime import date
from typing import Any

from djmoney.money import Money
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing_platform.api.fields import AmountString, MoneyAmountField
from billing_platform.money import round_minor
from revrec.models import Account, JournalSource, ObligationKind, Pattern

MONTH_SCHEMA = {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$", "example": "2026-03"}


@extend_schema_field(MONTH_SCHEMA)
class MonthField(serializers.Field):
    """A calendar month, held as its first day, written ``YYYY-MM``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: date) -> str:
        return "%04d-%02d" % (value.year, value.month)


class _Range(serializers.Serializer):
    from_ = MonthField(source="start", help_text="First month, YYYY-MM.")
    to = MonthField(source="end", help_text="Last month, YYYY-MM.")
    reporting_currency = serializers.CharField(read_only=True, help_text="The tenant's currency, reported first.")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        return {"from": fields.pop("from_"), **fields}


class StreamRevenueSerializer(serializers.Serializer):
    month = MonthField()
    hardware = MoneyAmountField(help_text="Hardware recognized when control passed.")
    service = MoneyAmountField(help_text="Services recognized by day over each device's term.")
    usage = MoneyAmountField(help_text="Usage recognized over its usage period.")
    fees = MoneyAmountField(help_text="One-time fees.")
    total = MoneyAmountField(help_text="hardware + service + usage + fees.")


class ContractBalancesSerializer(serializers.Serializer):
    month = MonthField(help_text="The balances at this month's last day.")
    deferred_revenue = MoneyAmountField(
        help_text="Σ of the contracts billed ahead of recognition (billed - recognized > 0): a contract liability."
    )
    contract_asset = MoneyAmountField(
        help_text="Σ of the contracts recognized ahead of billing (recognized - billed > 0), as a positive amount."
    )
    net = MoneyAmountField(help_text="deferred_revenue - contract_asset.")


class BillingsRevenueSerializer(serializers.Serializer):
    month = MonthField()
    billings = MoneyAmountField(help_text="Net invoiced (without tax), credit notes deducted.")
    revenue = MoneyAmountField(help_text="Recognized in the month, all streams.")
    difference = MoneyAmountField(help_text="billings - revenue: the month's change of the net contract balance.")


class WaterfallMonthSerializer(serializers.Serializer):
    month = MonthField()
    amount = MoneyAmountField()


class WaterfallSerializer(serializers.Serializer):
    as_of = MonthField(help_text="The month reported on (`to`): its first month.")
    months = WaterfallMonthSerializer(
        many=True,
        read_only=True,
        help_text="From as_of to the last month of a schedule; as_of holds what is due by its end and not "
        "yet recognized (a month not run yet).",
    )
    scheduled = MoneyAmountField(help_text="Σ months.")
    unscheduled = MoneyAmountField(help_text="Allocated to obligations without dates yet (a device not activated).")
    remaining = MoneyAmountField(help_text="Allocated and not recognized by the end of as_of: scheduled + unscheduled.")


class CurrencyRevenueSerializer(serializers.Serializer):
    currency = serializers.CharField(read_only=True)
    revenue = StreamRevenueSerializer(many=True, read_only=True, help_text="Revenue by stream, every month.")
    contract_balances = ContractBalancesSerializer(many=True, read_only=True)
    billings = BillingsRevenueSerializer(many=True, read_only=True, help_text="Billings vs revenue, every month.")
    waterfall = WaterfallSerializer(read_only=True)


class RevenueReportingMonthSerializer(serializers.Serializer):
    month = MonthField()
    hardware = AmountString(allow_null=True, help_text="In the reporting currency; null: a rate is missing.")
    service = AmountString(allow_null=True)
    usage = AmountString(allow_null=True)
    fees = AmountString(allow_null=True)
    total = AmountString(allow_null=True, help_text="hardware + service + usage + fees; null: a rate is missing.")
    missing_rates = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Currencies with revenue in the month and no exchange rate for it: never converted at 1.",
    )


class RevenueReportSerializer(_Range):
    currencies = CurrencyRevenueSerializer(
        many=True, read_only=True, help_text="The reporting currency first, then the others by code, never converted."
    )
    in_reporting_currency = RevenueReportingMonthSerializer(
        many=True,
        read_only=True,
        help_text="Revenue by stream and month of every currency, converted at each month's exchange rate.",
    )


class StreamCurrencySerializer(serializers.Serializer):
    currency = serializers.CharField(read_only=True)
    months = StreamRevenueSerializer(many=True, read_only=True)

    def to_representation(self, instance: Any) -> Any:
        currency, months = instance
        return super().to_representation({"currency": currency, "months": months})


class StreamReportSerializer(_Range):
    currencies = StreamCurrencySerializer(
        many=True, read_only=True, help_text="The reporting currency first, then the others by code, never converted."
    )
    in_reporting_currency = RevenueReportingMonthSerializer(
        many=True,
        read_only=True,
        help_text="Revenue by stream and month of every currency, converted at each month's exchange rate.",
    )


class ScheduleLineSerializer(serializers.Serializer):
    month = MonthField()
    planned = MoneyAmountField(help_text="What the obligation's schedule recognizes in the month.")
    recognized = MoneyAmountField(help_text="What the recognition runs posted in the month.")


class ObligationScheduleSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    kind = serializers.ChoiceField(choices=ObligationKind.choices, read_only=True)
    product_code = serializers.CharField(read_only=True)
    device_id = serializers.CharField(read_only=True, help_text="Empty for a line shared by the subscription.")
    pattern = serializers.ChoiceField(choices=Pattern.choices, read_only=True)
    allocated = MoneyAmountField(help_text="Its share of the transaction price.")
    starts_on = serializers.DateField(read_only=True, allow_null=True, help_text="Ratable: the term's first day.")
    ends_on = serializers.DateField(read_only=True, allow_null=True, help_text="Ratable: the day after the term.")
    recognized_on = serializers.DateField(
        read_only=True, allow_null=True, help_text="Point in time: the day control passes."
    )
    recognized = MoneyAmountField(help_text="Posted so far.")
    remaining = MoneyAmountField(help_text="allocated - recognized.")
    schedule = ScheduleLineSerializer(source="lines", many=True, read_only=True)


class ContractScheduleSerializer(serializers.Serializer):
    subscription = serializers.CharField(read_only=True, help_text="The subscription's external id.")
    contract = serializers.UUIDField(source="contract_id", read_only=True)
    currency = serializers.CharField(read_only=True)
    transaction_price = MoneyAmountField(help_text="The fixed consideration allocated to the obligations.")
    allocated = MoneyAmountField(help_text="Σ of the obligations' allocations.")
    recognized = MoneyAmountField(help_text="Σ posted so far.")
    created_at = serializers.DateTimeField(read_only=True)
    obligations = ObligationScheduleSerializer(many=True, read_only=True)


class JournalLineSerializer(serializers.Serializer):
    account = serializers.ChoiceField(choices=Account.choices, read_only=True)
    debit = MoneyAmountField()
    credit = MoneyAmountField()


class JournalEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    period = MonthField(help_text="The month it posts in.")
    date = serializers.DateField(read_only=True)
    source_type = serializers.ChoiceField(choices=JournalSource.choices, read_only=True)
    source_id = serializers.CharField(read_only=True, help_text="The invoice's, payment's or contract's id.")
    contract = serializers.UUIDField(source="contract_id", read_only=True, allow_null=True)
    subscription = serializers.SerializerMethodField(help_text="The contract's subscription (external id).")
    currency = serializers.CharField(read_only=True)
    debit = serializers.SerializerMethodField(help_text="Σ of the lines' debits: equal to credit.")
    credit = serializers.SerializerMethodField(help_text="Σ of the lines' credits.")
    lines = JournalLineSerializer(many=True, read_only=True)
    created_at = serializers.DateTimeField(read_only=True)

    def get_subscription(self, entry: Any) -> str | None:
        return None if entry.contract is None else str(entry.contract.subscription.external_id)

    @extend_schema_field({"type": "string", "format": "decimal", "example": "514.30"})
    def get_debit(self, entry: Any) -> str:
        return self._total(entry, "debit")

    @extend_schema_field({"type": "string", "format": "decimal", "example": "514.30"})
    def get_credit(self, entry: Any) -> str:
        return self._total(entry, "credit")

    def _total(self, entry: Any, side: str) -> str:
        total = sum((getattr(line, side) for line in entry.lines.all()), Money(0, entry.currency))
        return str(round_minor(total.amount, entry.currency))
