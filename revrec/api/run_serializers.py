"""Recognition runs and revenue periods as the API writes them: months as ``YYYY-MM``, amounts as
strings next to their currency."""

import re
from datetime import date
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing_platform.api.serializers import StrictSerializer
from revrec.models import RecognitionRunStatus

PERIOD_STATUSES = ["open", "closed"]
REVENUE_STREAMS = ["hardware", "service", "usage", "fee"]
# What the schema says of a month (1900-01 to 9999-12): a request it calls valid is never a 400.
MONTH_PATTERN = "^(19|[2-9][0-9])[0-9]{2}-(0[1-9]|1[0-2])$"


def month_of(value: str) -> date:
    """``YYYY-MM`` (already matched by ``MONTH_PATTERN``) as the first day of the month."""
    year, month = value.split("-")
    return date(int(year), int(month), 1)


@extend_schema_field({"type": "string", "pattern": MONTH_PATTERN, "example": "2026-03"})
class PeriodField(serializers.Field):
    """A month, ``YYYY-MM`` (1900-01 to 9999-12), read as the first day of the month."""

    default_error_messages = {"invalid": "A calendar month, YYYY-MM, between 1900-01 and 9999-12."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "A calendar month, YYYY-MM.")
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> date:
        if not isinstance(data, str) or not re.fullmatch(MONTH_PATTERN, data):
            self.fail("invalid")
        return month_of(data)

    def to_representation(self, value: Any) -> str:
        return "%04d-%02d" % (value.year, value.month)


class RevenueRowSerializer(serializers.Serializer):
    currency = serializers.CharField(read_only=True)
    stream = serializers.ChoiceField(choices=REVENUE_STREAMS, read_only=True, help_text="The revenue stream.")
    amount = serializers.CharField(read_only=True, help_text="Revenue recognized, in the currency's minor unit.")


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(read_only=True, help_text="Contracts gone through.")
    total = serializers.IntegerField(read_only=True, help_text="Contracts to go through (0 until the run starts).")


class RecognitionRunInputSerializer(StrictSerializer):
    period = PeriodField(help_text="The calendar month to recognize, YYYY-MM; at most the current month.")


class RecognitionRunOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    period = PeriodField(source="month", read_only=True)
    status = serializers.ChoiceField(choices=RecognitionRunStatus.choices, read_only=True)
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
    status = serializers.ChoiceField(choices=RecognitionRunStatus.choices, read_only=True)


class RevenuePeriodSerializer(serializers.Serializer):
    month = serializers.CharField(source="period", read_only=True, help_text="YYYY-MM.")
    status = serializers.ChoiceField(choices=PERIOD_STATUSES, read_only=True)
    closed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    revenue = RevenueRowSerializer(
        many=True, read_only=True, help_text="Revenue the journal posted in the month, by currency and stream."
    )
    run = RunSummarySerializer(read_only=True, allow_null=True, help_text="The month's latest recognition run.")
