"""Usage events, stored for volume: a month-partitioned table written with COPY, a key table whose
primary key deduplicates by (tenant, transaction_id) at write time, and rollups kept current in
the same statement so that live usage never scans raw events."""

import uuid

from django.db import models


class UsageEvent(models.Model):
    """One accepted event. The table is partitioned by month of ``timestamp`` (see migration 0001);
    the ORM only reads it."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    transaction_id = models.CharField(max_length=255)
    meter = models.ForeignKey("catalog.Meter", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    subscription = models.ForeignKey(
        "subscriptions.Subscription", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    device_id = models.CharField(max_length=200, blank=True, default="")
    timestamp = models.DateTimeField()
    # The meter field's value (sum, max, latest); null for count and unique_count.
    value = models.DecimalField(max_digits=38, decimal_places=10, null=True)
    properties = models.JSONField(default=dict)
    # The derived dimension of meters with time bands, in the customer's time zone at ingestion.
    time_band = models.CharField(max_length=50, blank=True, default="")
    received_at = models.DateTimeField()
    # The event's period had already closed when it arrived: invoicing bills it as an adjustment.
    late = models.BooleanField(default=False)

    class Meta:
        managed = False
        db_table = "usage_event"

    def __str__(self) -> str:
        return self.transaction_id


class UsageRollup(models.Model):
    """Per subscription, meter, 15-minute bucket, dimension values and time band: count, sum, max and
    the latest value. 15 minutes, so that local midnights of every time zone fall on a bucket edge."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    subscription = models.ForeignKey("subscriptions.Subscription", on_delete=models.CASCADE, related_name="+")
    meter = models.ForeignKey("catalog.Meter", on_delete=models.CASCADE, related_name="+")
    bucket = models.DateTimeField()
    dimensions = models.JSONField(default=dict)
    time_band = models.CharField(max_length=50, blank=True, default="")
    event_count = models.BigIntegerField(default=0)
    value_sum = models.DecimalField(max_digits=38, decimal_places=10, default=0)
    value_max = models.DecimalField(max_digits=38, decimal_places=10, null=True)
    latest_at = models.DateTimeField(null=True)
    latest_value = models.DecimalField(max_digits=38, decimal_places=10, null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "meter", "bucket", "dimensions", "time_band"], name="usage_rollup_unique"
            )
        ]
        indexes = [models.Index(fields=["subscription", "meter", "bucket"], name="usage_rollup_lookup")]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.meter_id} {self.bucket}"


class RejectedEvent(models.Model):
    """An event refused at ingestion, kept with its reason for inspection; it never blocks the others."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    received_at = models.DateTimeField(db_index=True)
    transaction_id = models.CharField(max_length=255, blank=True, default="")
    code = models.CharField(max_length=64, blank=True, default="")
    reason = models.CharField(max_length=40)
    detail = models.CharField(max_length=500)
    payload = models.JSONField()

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-received_at"], name="rejected_tenant_received")]

    def __str__(self) -> str:
        return f"{self.transaction_id}: {self.reason}"


class UsageSettings(models.Model):
    """Per-tenant ingestion limits."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.OneToOneField("tenancy.Tenant", on_delete=models.CASCADE, related_name="usage_settings")
    # Events older than this many days are rejected (too late to bill).
    max_event_age_days = models.PositiveIntegerField(default=62)
    # Requests per second per API key on POST /events.
    rate_limit_per_second = models.PositiveIntegerField(default=100)

    def __str__(self) -> str:
        return f"usage settings of {self.tenant_id}"
