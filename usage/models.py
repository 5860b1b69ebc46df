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


class RollupValues(models.Model):
    """What a rollup keeps of the counted events of one subscription, meter, dimension values, time
    band and bucket: count, sum, max and the latest value. Two tables share it, one per bucket size."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    subscription = models.ForeignKey("subscriptions.Subscription", on_delete=models.CASCADE, related_name="+")
    meter = models.ForeignKey("catalog.Meter", on_delete=models.CASCADE, related_name="+")
    dimensions = models.JSONField(default=dict)
    time_band = models.CharField(max_length=50, blank=True, default="")
    event_count = models.BigIntegerField(default=0)
    value_sum = models.DecimalField(max_digits=38, decimal_places=10, default=0)
    value_max = models.DecimalField(max_digits=38, decimal_places=10, null=True)
    latest_at = models.DateTimeField(null=True)
    latest_value = models.DecimalField(max_digits=38, decimal_places=10, null=True)

    class Meta:
        abstract = True


class UsageRollup(RollupValues):
    """Per 15-minute bucket, so that local midnights of every time zone (+05:30, +05:45 included)
    fall on a bucket edge: summing the buckets of a period between local midnights is exact."""

    id = models.BigAutoField(primary_key=True)
    bucket = models.DateTimeField()
    # Nearly every event of a batch spread over the month updates its own row here, and an update
    # that cannot stay on its page writes every index: lookups by subscription use the unique
    # index, which starts with it, so the subscription has no index of its own.
    subscription = models.ForeignKey(
        "subscriptions.Subscription", on_delete=models.CASCADE, related_name="+", db_index=False
    )

    class Meta:
        constraints = [
            # Also the index of lookups by subscription, meter and bucket, which it starts with.
            models.UniqueConstraint(
                fields=["subscription", "meter", "bucket", "dimensions", "time_band"], name="usage_rollup_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.meter_id} {self.bucket}"


class UsageDailyRollup(RollupValues):
    """The same per UTC day, written by the same statement as the 15-minute rollups, so that each
    row always equals the sum of its day's 15-minute rows. A period is read as its whole UTC days
    from here and its ragged ends (a local midnight is rarely a UTC one) from the 15-minute rows:
    a month is about 30 rows per group instead of about 2,900."""

    id = models.BigAutoField(primary_key=True)
    day = models.DateTimeField()  # the UTC midnight that starts the day
    # Nearly every batch updates the same few rows: the fewer indexes, the cheaper an update that
    # cannot stay on its page. Lookups by subscription use the unique index, which starts with it;
    # the table is small (a row per day, not per quarter hour), so a tenant's or a meter's rows are
    # found by a scan when one is deleted.
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    subscription = models.ForeignKey(
        "subscriptions.Subscription", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    meter = models.ForeignKey("catalog.Meter", on_delete=models.CASCADE, related_name="+", db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "meter", "day", "dimensions", "time_band"], name="usage_daily_rollup_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.meter_id} {self.day:%Y-%m-%d}"


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


class UsageArchiveState(models.TextChoices):
    ARCHIVING = "archiving", "Archiving"
    ARCHIVED = "archived", "Archived"
    RESTORED = "restored", "Restored"


class UsageArchive(models.Model):
    """A month of raw events taken out of ``usage_event`` (its partition detached, exported to a
    compressed file, dropped) by ``manage.py usage_archive``, or put back by ``usage_restore``
    (``usage.archive``). Months are the partitions' UTC months and hold every tenant's events, so
    the row has no tenant: it says which months the raw-event readers must not read, and ingestion
    never creates a partition again for a month archived."""

    month = models.DateField(unique=True)  # the first day, UTC
    state = models.CharField(max_length=16, choices=UsageArchiveState.choices)
    rows = models.BigIntegerField(null=True)
    # SHA-256 of the uncompressed CSV (header included), checked again when it is restored.
    sha256 = models.CharField(max_length=64, blank=True, default="")
    file = models.CharField(max_length=500, blank=True, default="")
    archived_at = models.DateTimeField(null=True)
    restored_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["month"]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.state}"
