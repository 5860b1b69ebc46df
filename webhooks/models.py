"""Outbound webhooks: the tenant's endpoints, the outbox of events, one delivery per event and
endpoint, and every try of a delivery."""

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing_platform.encryption import EncryptedTextField


class WebhookEndpoint(models.Model):
    """Where a tenant receives its events, signed per Standard Webhooks."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    url = models.CharField(max_length=2000)
    # Event types (``webhooks.events.EVENT_TYPES``), or ["*"] for all of them.
    events = models.JSONField(default=list)
    description = models.CharField(max_length=300, blank=True, default="")
    # The signing secret, "whsec_" + base64, shown once (at creation and rotation), encrypted at rest
    # (an HMAC key must be read back to sign). Never logged, never in the audit log (its fingerprint only).
    signing_secret = EncryptedTextField()
    # After a rotation the old secret signs too, for 24 hours, so the receiver can switch.
    previous_signing_secret = EncryptedTextField(blank=True, default="")
    previous_signing_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # Null while enabled. A disabled endpoint gets no new deliveries and its pending ones are failed.
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    # The first failed try since the last success: failing for 5 days disables the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="webhook_endpoint_tenant")]

    def __str__(self) -> str:
        return self.url

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None


class WebhookEvent(models.Model):
    """The outbox: one row per event, written in the transaction of the change it reports. Its
    body is kept as the exact text sent, so that every try and replay signs the same bytes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=64)
    # ``{"type", "timestamp", "data"}`` as JSON text (jsonb would reorder its keys).
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="webhook_event_tenant")]

    def __str__(self) -> str:
        return "%s %s" % (self.type, self.webhook_id)

    @property
    def webhook_id(self) -> str:
        """The ``webhook-id`` header: the same for every endpoint, try and replay of the event, so
        that receivers deduplicate by it."""
        return "msg_" + self.id.hex


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class WebhookDelivery(models.Model):
    """One event to one endpoint: tried until a 2xx answer, on the retry schedule, then failed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    # Tries made in all, and tries of the current round (a replay starts a new round).
    attempts = models.PositiveIntegerField(default=0)
    round_attempts = models.PositiveSmallIntegerField(default=0)
    # When a pending delivery is due. While a worker holds it, a lease: if the worker dies, the
    # delivery is due again once the lease is over.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_once")]
        indexes = [
            # The sweep's question: which pending deliveries are due?
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_delivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_endpoint"),
        ]

    def __str__(self) -> str:
        return "%s -> %s (%s)" % (self.event_id, self.endpoint_id, self.status)


class WebhookAttempt(models.Model):
    """One try of a delivery, as it went: the answer's status, how long it took, the start of the
    answer's body, or the error when no answer came."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="tries")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.TextField(blank=True, default="")
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["attempted_at", "id"]
        indexes = [models.Index(fields=["delivery", "attempted_at"], name="webhook_attempt_delivery")]

    def __str__(self) -> str:
        return "%s at %s: %s" % (self.delivery_id, self.attempted_at, self.status_code or self.error)

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
