"""The raw event table, partitioned by month of the event's timestamp, and the key table whose
primary key deduplicates events by (tenant, transaction_id) at write time (a unique index on a
partitioned table would have to include the partition key, which would let a replayed event
with another timestamp through). Monthly partitions are created on demand by the ingestion
(``usage.partitions``), so old months can be detached and archived."""

from django.db import migrations

CREATE = """
CREATE TABLE usage_event (
    id bigserial NOT NULL,
    tenant_id uuid NOT NULL,
    transaction_id varchar(255) NOT NULL,
    meter_id uuid NOT NULL,
    subscription_id uuid NOT NULL,
    device_id varchar(200) NOT NULL DEFAULT '',
    "timestamp" timestamptz NOT NULL,
    value numeric(38, 10),
    properties jsonb NOT NULL DEFAULT '{}'::jsonb,
    time_band varchar(50) NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL,
    late boolean NOT NULL DEFAULT false,
    PRIMARY KEY (id, "timestamp")
) PARTITION BY RANGE ("timestamp");
CREATE INDEX usage_event_subscription_meter_ts ON usage_event (subscription_id, meter_id, "timestamp");
CREATE TABLE usage_event_key (
    tenant_id uuid NOT NULL,
    transaction_id varchar(255) NOT NULL,
    PRIMARY KEY (tenant_id, transaction_id)
);
"""

DROP = "DROP TABLE IF EXISTS usage_event; DROP TABLE IF EXISTS usage_event_key;"


class Migration(migrations.Migration):
    dependencies = [("usage", "0001_usage_tables")]

    operations = [migrations.RunSQL(CREATE, DROP)]
