"""Payments, their allocations to invoices, the customer's credit balance, gateway attempts and
events, and dunning (specs/payments.md).

Amounts are in the row's ``currency`` (``SharedCurrencyMoneyField``). The ledger rules:

- An invoice's ``amount_paid`` is the sum of its ``PaymentAllocation`` rows, which are signed: a
  payment or the balance applied to it adds, a refund or the part of a credit note beyond what
  was due (moved to the balance) subtracts. ``amount_due = max(0, total - credited - amount_paid)``.
- A customer's ``balance`` is the sum of its ``BalanceTransaction`` rows (credit it holds): an
  overpayment or a credit note on a paid invoice adds, applying it to an invoice or refunding it
  subtracts. The column on ``customers.Customer`` is that sum, kept in the same transaction.
"""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing_platform.encryption import EncryptedTextField
from billing_platform.money_fields import MoneyManager, amount_field


class CreditDestination(models.TextChoices):
    BALANCE = "balance", _("Customer balance")
    REFUND = "refund", _("Refund")


class PaymentSettings(models.Model):
    """A tenant's gateway keys and what happens to money received beyond what is due."""

    tenant = models.OneToOneField("tenancy.Tenant", on_delete=models.CASCADE, related_name="payment_settings")
    # The tenant's own Stripe account. Secrets are encrypted at rest and never shown again.
    stripe_secret_key = EncryptedTextField(blank=True, default="")
    stripe_webhook_secret = EncryptedTextField(blank=True, default="")
    stripe_publishable_key = models.CharField(max_length=255, blank=True, default="")
    # Overpayments and credit notes on paid invoices: kept as customer balance, or refunded.
    credit_destination = models.CharField(
        max_length=16, choices=CreditDestination.choices, default=CreditDestination.BALANCE
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"payment settings of {self.tenant_id}"


class DunningPolicy(models.Model):
    """When to retry, remind, suspend and write off. One per tenant (``customer`` null), and
    optionally one per customer that replaces it. Days count from the due date in the customer's
    time zone; a negative reminder day is before it. ``None`` for suspension or write-off: never."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    customer = models.OneToOneField(
        "customers.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="dunning_policy"
    )
    retry_days = ArrayField(models.SmallIntegerField(), default=list, blank=True)
    reminder_days = ArrayField(models.SmallIntegerField(), default=list, blank=True)
    suspend_after_days = models.PositiveSmallIntegerField(null=True, blank=True)
    uncollectible_after_days = models.PositiveSmallIntegerField(null=True, blank=True)
    # Where reminder e-mails send the customer to pay (the tenant's payment page); ``{invoice}`` is
    # replaced by the invoice number. Read from the tenant's policy; blank: bank details only.
    pay_url = models.URLField(max_length=500, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(customer__isnull=True), name="dunning_policy_one_per_tenant"
            ),
        ]

    def __str__(self) -> str:
        return f"dunning policy of {self.customer_id or self.tenant_id}"


class PaymentMethod(models.TextChoices):
    CARD = "card", _("Card")
    SEPA_DEBIT = "sepa_debit", _("SEPA direct debit")
    BANK_TRANSFER = "bank_transfer", _("Bank transfer")
    CHEQUE = "cheque", _("Cheque")
    CASH = "cash", _("Cash")
    OTHER = "other", _("Other")


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    REFUNDED = "refunded", _("Refunded")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")


class Gateway(models.TextChoices):
    STRIPE = "stripe", _("Stripe")
    MANUAL = "manual", _("Manual")


class Payment(models.Model):
    """Money received from a customer (or its failure), in the customer's currency."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="payments")
    currency = models.CharField(max_length=3)
    amount = amount_field()
    amount_refunded = amount_field(default=0)
    method = models.CharField(max_length=16, choices=PaymentMethod.choices)
    status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.SUCCEEDED)
    received_at = models.DateTimeField()
    reference = models.CharField(max_length=200, blank=True, default="")
    gateway = models.CharField(max_length=16, choices=Gateway.choices, default=Gateway.MANUAL)
    gateway_id = models.CharField(max_length=255, blank=True, default="")
    failure_code = models.CharField(max_length=100, blank=True, default="")
    failure_message = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = MoneyManager()

    class Meta:
        ordering = ["-received_at", "-created_at"]
        constraints = [
            # A gateway's payment is recorded once, whichever path (webhook, attempt, reconciliation)
            # sees it first.
            models.UniqueConstraint(
                fields=["tenant", "gateway", "gateway_id"], condition=~Q(gateway_id=""), name="payment_gateway_id_once"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=models.F("amount")),
                name="payment_refund_within_amount",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "customer", "-received_at"], name="payment_tenant_customer")]

    def __str__(self) -> str:
        return f"{self.amount} {self.method} {self.received_at:%Y-%m-%d}"


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class Refund(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    currency = models.CharField(max_length=3)
    amount = amount_field()
    reason = models.CharField(max_length=300, blank=True, default="")
    status = models.CharField(max_length=16, choices=RefundStatus.choices, default=RefundStatus.SUCCEEDED)
    gateway_id = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = MoneyManager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
            models.UniqueConstraint(
                fields=["tenant", "gateway_id"], condition=~Q(gateway_id=""), name="refund_gateway_id_once"
            ),
        ]

    def __str__(self) -> str:
        return f"refund of {self.amount} on {self.payment_id}"


class BalanceKind(models.TextChoices):
    OVERPAYMENT = "overpayment", _("Overpayment")
    CREDIT_NOTE = "credit_note", _("Credit note on a paid invoice")
    APPLIED = "applied", _("Applied to an invoice")
    REFUND = "refund", _("Refunded")
    ADJUSTMENT = "adjustment", _("Adjustment")


class BalanceTransaction(models.Model):
    """One movement of a customer's credit balance; positive adds credit."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="balance_transactions")
    currency = models.CharField(max_length=3)
    amount = amount_field()
    kind = models.CharField(max_length=16, choices=BalanceKind.choices)
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey("invoicing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    refund = models.ForeignKey(Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = MoneyManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "customer", "-created_at"], name="balance_tx_tenant_customer")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount}"


class AllocationSource(models.TextChoices):
    PAYMENT = "payment", _("Payment")
    BALANCE = "balance", _("Credit balance")
    REFUND = "refund", _("Refund")
    CREDIT_NOTE = "credit_note", _("Credit note beyond what was due")


class PaymentAllocation(models.Model):
    """A signed share of money on one invoice: its ``amount_paid`` is their sum."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey("invoicing.Invoice", on_delete=models.PROTECT, related_name="allocations")
    source = models.CharField(max_length=16, choices=AllocationSource.choices)
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="allocations")
    refund = models.ForeignKey(Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="allocations")
    balance_transaction = models.ForeignKey(
        BalanceTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="allocations"
    )
    credit_note = models.ForeignKey(
        "invoicing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    currency = models.CharField(max_length=3)
    amount = amount_field()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = MoneyManager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["tenant", "invoice"], name="allocation_tenant_invoice")]

    def __str__(self) -> str:
        return f"{self.source} {self.amount} on {self.invoice_id}"


class AttemptStatus(models.TextChoices):
    CREATED = "created", _("Created")
    PROCESSING = "processing", _("Processing")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    UNKNOWN = "unknown", _("Unknown")


# An attempt in one of these may still take the customer's money: at most one per invoice.
OPEN_ATTEMPT_STATUSES = (AttemptStatus.CREATED, AttemptStatus.PROCESSING, AttemptStatus.UNKNOWN)


class PaymentAttempt(models.Model):
    """One try at charging an invoice through the gateway (pitfalls #6 and #7)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey("invoicing.Invoice", on_delete=models.PROTECT, related_name="payment_attempts")
    number = models.PositiveSmallIntegerField()
    idempotency_key = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=16, choices=AttemptStatus.choices, default=AttemptStatus.CREATED)
    currency = models.CharField(max_length=3)
    amount = amount_field()
    # What started it: finalization, a dunning retry, the API or back-office, the portal.
    trigger = models.CharField(max_length=16, default="api")
    gateway = models.CharField(max_length=16, choices=Gateway.choices, default=Gateway.STRIPE)
    gateway_id = models.CharField(max_length=255, blank=True, default="")
    payment_method = models.CharField(max_length=255, blank=True, default="")
    failure_code = models.CharField(max_length=100, blank=True, default="")
    failure_message = models.CharField(max_length=500, blank=True, default="")
    next_retry_at = models.DateTimeField(null=True, blank=True)
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="attempts")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MoneyManager()

    class Meta:
        ordering = ["invoice", "number"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "number"], name="attempt_number_per_invoice"),
            # Pitfall #6: two paths (auto-charge, portal, API) can never both have money in flight.
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(status__in=["created", "processing", "unknown"]),
                name="attempt_one_open_per_invoice",
            ),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} on {self.invoice_id}: {self.status}"


class GatewayCustomer(models.Model):
    """The customer at the tenant's Stripe account, made when first needed."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    customer = models.OneToOneField("customers.Customer", on_delete=models.CASCADE, related_name="gateway_customer")
    gateway = models.CharField(max_length=16, choices=Gateway.choices, default=Gateway.STRIPE)
    gateway_customer_id = models.CharField(max_length=255)
    # The PaymentMethod charged off-session (``pm_…``); blank until one is added.
    default_payment_method = models.CharField(max_length=255, blank=True, default="")
    payment_method_summary = models.CharField(max_length=100, blank=True, default="")  # "visa •••• 4242"
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "gateway", "gateway_customer_id"], name="gateway_customer_once"),
        ]

    def __str__(self) -> str:
        return self.gateway_customer_id


class GatewayEvent(models.Model):
    """A signed event received from the gateway, stored before it is applied (once, by event id)."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    gateway = models.CharField(max_length=16, choices=Gateway.choices, default=Gateway.STRIPE)
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "gateway", "event_id"], name="gateway_event_once")]
        indexes = [models.Index(fields=["tenant", "processed_at"], name="gateway_event_pending")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class DunningActionKind(models.TextChoices):
    REMINDER = "reminder", _("Reminder e-mail")
    RETRY = "retry", _("Payment retry")
    OVERDUE = "overdue", _("Overdue")
    SUSPENSION = "suspension", _("Suspension")
    REACTIVATION = "reactivation", _("Reactivation")
    UNCOLLECTIBLE = "uncollectible", _("Written off")


class DunningAction(models.Model):
    """A dunning step taken. Steps of an invoice are unique by (kind, day): a beat run that is
    repeated, or two that overlap, take each step once."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(
        "invoicing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="dunning_actions"
    )
    subscription = models.ForeignKey(
        "subscriptions.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=DunningActionKind.choices)
    # Days relative to the due date the step belongs to (reminders, retries); 0 otherwise.
    day = models.SmallIntegerField(default=0)
    # The customer's local day it was taken for.
    on = models.DateField()
    at = models.DateTimeField()
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "kind", "day"], condition=Q(invoice__isnull=False), name="dunning_step_once"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "-at"], name="dunning_action_tenant_at")]

    def __str__(self) -> str:
        return f"{self.kind} day {self.day} on {self.on}"
