"""Recognition runs and revenue periods as the API writes them: months as ``YYYY-MM``, amounts as
strings next to their currency."""

from datetime import date
from typing import Any

from rest_framework import serializers

# What the schema says of a month (1900-01 to 9999-12): a request it calls valid is never a 400.
MONTH_PATTERN = "^(19|[2-9][0-9])[0-9]{2}-(0[1-9]|1[0-2])$"


def month_of(value: str) -> date:
    """``YYYY-MM`` (already matched by ``MONTH_PATTERN``) as the first day of the month."""
    year, month = value.split("-")
    return date(int(year), int(month), 1)


class PeriodField(serializers.RegexField):
    """A month, ``YYYY-MM``, read as the first day of the month."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "A calendar month, YYYY-MM.")
        super().__init__(MONTH_PATTERN, max_length=7, **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        return month_of(super().to_internal_value(data))

    def to_representation(self, value: Any) -> str:
        return "%04d-%02d" % (value.year, value.month)


class RevenueRowSerializer(serializers.Serializer):
    currency = serializers.CharField(read_only=True)
    stream = serializers.ChoiceField(
        choices=["hardware", "service", "usage", "fee"], read_only=True, help_text="The revenue stream."
    )
    amount = serializers.CharField(read_only=True, help_text="Revenue recognized, in the currency's minor unit.")


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(read_only=True, help_text="Contracts gone through.")
    total = serializers.IntegerField(read_only=True, help_text="Contracts to go through (0 until the run starts).")


class RecognitionRunInputSerializer(serializers.Serializer):
    period = PeriodField(help_text="The calendar month to recognize, YYYY-MM; at most the current month.")


class RecognitionRunOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    period = PeriodField(source="month", read_only=True)
    status = serializers.ChoiceField(choices=["queued", "running", "succeeded", "failed"], read_only=True)
    progress = ProgressSerializer(source="*", read_only=True)
    entries = serializers.IntegerField(read_only=True, help_text="Recognition entries posted (one per obligation).")
    journal_entries = serializers.IntegerField(read_only=True, help_text="Journal entries posted.")
    revenue = RevenueRowSerializer(many=True, read_only=True, help_text="What this run posted, by currency and stream.")
    error = serializers.CharField(read_only=True, help_text="Why the run failed; empty otherwise.")
    requested_by = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    started_at = serializers.DateTimeField(read_only=True, allow_null=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)


class RunSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    status = serializers.ChoiceField(choices=["queued", "running", "succeeded", "failed"], read_only=True)


class RevenuePeriodSerializer(serializers.Serializer):
    month = serializers.CharField(source="period", read_only=True, help_text="YYYY-MM.")
    status = serializers.ChoiceField(choices=["open", "closed"], read_only=True)
    closed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    revenue = RevenueRowSerializer(
        many=True, read_only=True, help_text="Revenue the journal posted in the month, by currency and stream."
    )
    run = RunSummarySerializer(read_only=True, allow_null=True, help_text="The month's latest recognition run.")
