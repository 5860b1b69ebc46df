import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Language(models.TextChoices):
    EN = "en", _("English")
    FR = "fr", _("French")


class Collection(models.TextChoices):
    """How an invoice's money is collected (the names Stripe users know)."""

    CHARGE_AUTOMATICALLY = "charge_automatically", _("Charge automatically")
    SEND_INVOICE = "send_invoice", _("Send invoice")


class Customer(models.Model):
    """A tenant's end customer: the party invoiced, in its own currency, time zone and language."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="customers")
    # The tenant's own identifier, used in API paths (/customers/{external_id}).
    external_id = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    email = models.EmailField(max_length=254)
    currency = models.CharField(max_length=3)
    timezone = models.CharField(max_length=64)
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.EN)
    country = models.CharField(max_length=2)
    tax_id = models.CharField(max_length=32, blank=True, default="")
    # The postal address invoices are sent to (EN 16931 BG-8); its country is ``country``.
    address_line1 = models.CharField(max_length=200, blank=True, default="")
    address_line2 = models.CharField(max_length=200, blank=True, default="")
    postal_code = models.CharField(max_length=16, blank=True, default="")
    city = models.CharField(max_length=100, blank=True, default="")
    # 1..31; a day past the month's end falls on its last day (31 -> 30 April, 28/29 February).
    # Null until set explicitly or by the first subscription (the day it starts).
    billing_day = models.PositiveSmallIntegerField(null=True, blank=True)
    # The reseller that sold to this customer (its code), if any.
    reseller = models.CharField(max_length=100, blank=True, default="")
    # Set at creation from the tenant's default_collection when not given.
    collection = models.CharField(max_length=24, choices=Collection.choices, default=Collection.SEND_INVOICE)
    # Days from issue to due date; null: the tenant's payment_terms_days (0 when charged automatically).
    payment_terms_days = models.PositiveSmallIntegerField(null=True, blank=True)
    # Credit the customer holds, in its currency: the sum of its payments.BalanceTransaction rows,
    # applied to its next invoices.
    balance = models.DecimalField(
        max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES, default=0
    )
    # The tenant's own string keys and values (its ERP's ids...), never read by Tripod
    # (billing_platform.validation.validate_metadata: at most 50 keys).
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_id"], name="customer_unique_external_id"),
            models.CheckConstraint(
                condition=Q(billing_day__isnull=True) | Q(billing_day__gte=1, billing_day__lte=31),
                name="customer_billing_day_1_31",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at", "-id"], name="customer_tenant_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"
