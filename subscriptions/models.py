"""Subscriptions of customers to plans, their devices (the subscription items), the timeline of
everything that happened to them, and the device-cloud webhooks that drive activation."""

import uuid
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class SubscriptionStatus(models.TextChoices):
    PENDING_ACTIVATION = "pending_activation", _("Pending activation")
    ACTIVE = "active", _("Active")
    PAST_DUE = "past_due", _("Past due")
    SUSPENDED = "suspended", _("Suspended")
    CANCELLED = "cancelled", _("Cancelled")
    ENDED = "ended", _("Ended")

    # The statuses of a subscription that still bills and receives usage (assigned below the class:
    # inside its body the members are not built yet, and a tuple there would become a member).
    LIVE: ClassVar[tuple["SubscriptionStatus", ...]]


SubscriptionStatus.LIVE = (
    SubscriptionStatus.PENDING_ACTIVATION,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
    SubscriptionStatus.SUSPENDED,
)


class Subscription(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="subscriptions")
    external_id = models.CharField(max_length=200)
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey("catalog.Plan", on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(
        max_length=24, choices=SubscriptionStatus.choices, default=SubscriptionStatus.PENDING_ACTIVATION
    )
    signed_at = models.DateTimeField()
    # When the subscription starts (local midnight of its first day, stored in UTC).
    starts_at = models.DateTimeField()
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    commitment_ends_at = models.DateTimeField(null=True, blank=True)
    auto_renew = models.BooleanField(default=True)
    # A locked subscription keeps the price version it was sold at until renewal.
    price_locked = models.BooleanField(default=False)
    locked_price_version = models.ForeignKey(
        "catalog.PriceVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cancel_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The tenant's own string keys and values, never read by Tripod (validate_metadata).
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_id"], name="subscription_unique_external_id")
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="subscription_tenant_status")]

    def __str__(self) -> str:
        return self.external_id


class Device(models.Model):
    """A subscription item: one connected device. Per-device fees count the active ones.

    A **slot** is a device ordered and not shipped yet (an order from the portal's shop): it has no
    device id until one is bound to it at shipment (``subscriptions.orders.slot_bind``). It is never
    active, so it pays no per-device service; hardware billed at signature is due for it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="devices")
    # Blank for a slot, until a device is bound to it.
    device_id = models.CharField(max_length=200, blank=True, default="")
    device_type = models.CharField(max_length=100, blank=True, default="")
    region = models.CharField(max_length=100, blank=True, default="")
    added_at = models.DateTimeField()
    shipped_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    # Removed from the subscription (a change); the device id may then be used again elsewhere.
    removed_at = models.DateTimeField(null=True, blank=True)
    # The invoice that billed this device's hardware due at signature at once, when it was ordered
    # (an invoicing id: no foreign key, this app sits below): that invoice billed the first
    # instalment, so bill runs bill the next ones (``invoicing.fees.hardware_fee_lines``). Cleared
    # when that invoice is voided.
    hardware_invoiced_by = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["device_id"]
        constraints = [
            # The device cloud addresses a device by its id alone: it must name one live device.
            # Slots (no id yet) are not addressed by the device cloud, and there may be many.
            models.UniqueConstraint(
                fields=["tenant", "device_id"],
                condition=Q(removed_at__isnull=True) & ~Q(device_id=""),
                name="device_unique_live_id",
            )
        ]
        indexes = [
            # A device's rows over time, removed ones included: ingestion reads the attributes a
            # device had when an event happened (its dimensions), for a batch's devices at once.
            models.Index(fields=["tenant", "device_id", "added_at"], name="device_history"),
        ]

    def __str__(self) -> str:
        return self.device_id or "slot %s" % self.pk

    @property
    def is_slot(self) -> bool:
        """Ordered, no device bound yet."""
        return not self.device_id


class SubscriptionEvent(models.Model):
    """The subscription's timeline: signed, shipped, activated, status changes... Never edited."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    type = models.CharField(max_length=48)
    device_id = models.CharField(max_length=200, blank=True, default="")
    from_status = models.CharField(max_length=24, blank=True, default="")
    to_status = models.CharField(max_length=24, blank=True, default="")
    actor_type = models.CharField(max_length=16)
    actor_label = models.CharField(max_length=200, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.type}"


class WebhookStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    APPLIED = "applied", _("Applied")
    IGNORED = "ignored", _("Already applied")
    REJECTED = "rejected", _("Rejected")
    FAILED = "failed", _("Failed, will retry")


class DeviceCloudWebhook(models.Model):
    """Every webhook from the device cloud, stored before anything else and kept with its outcome."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    # ``webhook-id`` (Standard Webhooks) or the CloudEvent ``id``: the replay key.
    webhook_id = models.CharField(max_length=255)
    received_at = models.DateTimeField()
    content_type = models.CharField(max_length=100)
    body = models.TextField()
    # The ``ce-*`` headers of a CloudEvent sent in binary mode (its attributes; the body is its data),
    # kept so that a replay reads the event as it was received. Empty otherwise.
    cloud_event_headers = models.JSONField(default=dict, blank=True)
    event_type = models.CharField(max_length=64, blank=True, default="")
    device_id = models.CharField(max_length=200, blank=True, default="")
    occurred_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=WebhookStatus.choices, default=WebhookStatus.RECEIVED)
    outcome = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["tenant", "webhook_id"], name="webhook_unique_id")]
        indexes = [models.Index(fields=["tenant", "status"], name="webhook_tenant_status")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.device_id}"


class ChargeKind(models.TextChoices):
    CHARGE = "charge", _("Charge")
    CREDIT = "credit", _("Credit")


class ChargeSource(models.TextChoices):
    IN_ADVANCE = "in_advance", _("Fee billed in advance")
    ACTIVATION = "activation", _("Activation proration")
    CHANGE = "change", _("Subscription change")
    EARLY_TERMINATION = "early_termination", _("Early termination fee")
    # The part of its first period a fee was not billed in advance for: it started after the
    # period began (signature mid-period, end of a trial), so the invoice closing it bills the rest.
    FIRST_PERIOD = "first_period", _("First period proration")
    ONE_TIME = "one_time", _("One-time fee")


class ServiceCharge(models.Model):
    """What was charged (or credited) for a service period of a subscription, per device.

    The ledger that keeps credits honest: a change credits at most what was charged for that
    device, component and period, net of earlier credits (pitfall #5). Bill runs record the fees
    they invoice here; changes record their prorated charges and credits, which the next invoice
    bills (``invoiced_at`` is set then).

    A one-time fee (``one_time``) is billed once per subscription, or once per device: the row its
    invoice writes is what says it was billed, and the database refuses a second one. Voiding that
    invoice releases it (``released_at``), so the invoice made again bills it once more.
    """

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="charges")
    component = models.ForeignKey("catalog.PlanComponent", on_delete=models.PROTECT, related_name="+")
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.PROTECT, related_name="charges")
    kind = models.CharField(max_length=8, choices=ChargeKind.choices)
    source = models.CharField(max_length=24, choices=ChargeSource.choices)
    # The whole service period the fee is for, and the part of it this entry covers.
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    covered_start = models.DateTimeField()
    covered_end = models.DateTimeField()
    # Positive for both kinds; a credit is subtracted.
    amount = models.DecimalField(max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES)
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=300, blank=True, default="")
    change = models.ForeignKey(
        "SubscriptionChange", null=True, blank=True, on_delete=models.CASCADE, related_name="charges"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    invoiced_at = models.DateTimeField(null=True, blank=True)
    # The invoice that billed it: an invoicing id, which this app sits below (no foreign key). Voiding
    # that invoice releases what it billed.
    invoiced_by = models.UUIDField(null=True, blank=True)
    # A one-time fee whose invoice was voided: billable again, by a new row.
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["period_start", "id"]
        indexes = [
            models.Index(fields=["subscription", "component", "device", "period_start"], name="charge_period"),
            # What an invoice billed, found again when it is voided.
            models.Index(fields=["invoiced_by"], condition=Q(invoiced_by__isnull=False), name="charge_invoiced_by"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="charge_amount_not_negative"),
            # A period's in-advance fee (or activation proration) is charged once per device, however
            # often a bill run is retried or run late (pitfall #1).
            models.UniqueConstraint(
                fields=["subscription", "component", "device", "period_start", "source"],
                condition=Q(source__in=["in_advance", "activation", "first_period"]),
                nulls_distinct=False,
                name="charge_once_per_period",
            ),
            # A one-time fee is charged once per subscription (device null) or per device, whatever
            # the billing date, until the invoice that billed it is voided.
            models.UniqueConstraint(
                fields=["subscription", "component", "device"],
                condition=Q(source="one_time", released_at__isnull=True),
                nulls_distinct=False,
                name="one_time_fee_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency}"


class ChangeAction(models.TextChoices):
    ADD_DEVICES = "add_devices", _("Add devices")
    REMOVE_DEVICES = "remove_devices", _("Remove devices")
    CHANGE_PLAN = "change_plan", _("Change plan")
    CANCEL = "cancel", _("Cancel")


class ChangeStatus(models.TextChoices):
    APPLIED = "applied", _("Applied")
    SCHEDULED = "scheduled", _("Scheduled")


class SubscriptionChange(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="changes")
    action = models.CharField(max_length=16, choices=ChangeAction.choices)
    status = models.CharField(max_length=12, choices=ChangeStatus.choices)
    effective_at = models.DateTimeField()
    params = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["effective_at", "created_at"]

    def __str__(self) -> str:
        return f"{self.action} {self.effective_at}"


class OrderStatus(models.TextChoices):
    PLACED = "placed", _("Placed")
    FULFILLED = "fulfilled", _("Fulfilled")
    CANCELLED = "cancelled", _("Cancelled")


class Order(models.Model):
    """A customer's order from the portal's shop: the subscription it signed, with ``quantity``
    device slots, and where to ship the devices. Fulfilled once a device is bound to every slot."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    # Per tenant, from 1, shown as ORD-000001.
    sequence = models.PositiveIntegerField()
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="orders")
    subscription = models.OneToOneField(Subscription, on_delete=models.PROTECT, related_name="order")
    plan = models.ForeignKey("catalog.Plan", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    shipping_name = models.CharField(max_length=200)
    shipping_line1 = models.CharField(max_length=200)
    shipping_line2 = models.CharField(max_length=200, blank=True, default="")
    shipping_postal_code = models.CharField(max_length=16)
    shipping_city = models.CharField(max_length=100)
    shipping_country = models.CharField(max_length=2)
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PLACED)
    # Who placed it, as the audit log names them (a portal user's e-mail, a staff member).
    placed_by = models.CharField(max_length=200, blank=True, default="")
    # The key of the request that placed it (the shop's confirmation form): confirming twice places
    # one order. Blank when none was given.
    request_key = models.CharField(max_length=64, blank=True, default="")
    placed_at = models.DateTimeField()
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-placed_at", "-sequence"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "sequence"], name="order_unique_sequence"),
            models.UniqueConstraint(
                fields=["tenant", "request_key"], condition=~Q(request_key=""), name="order_unique_request_key"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "status", "placed_at"], name="order_tenant_status")]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return "ORD-%06d" % self.sequence

    @property
    def shipping_address(self) -> dict[str, str]:
        return {
            "name": self.shipping_name,
            "line1": self.shipping_line1,
            "line2": self.shipping_line2,
            "postal_code": self.shipping_postal_code,
            "city": self.shipping_city,
            "country": self.shipping_country,
        }
