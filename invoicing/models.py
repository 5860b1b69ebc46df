"""Invoices (and credit notes), their lines and taxes, gapless numbering, and bill runs."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing_platform.jobs import WatchedJob
from billing_platform.money_fields import MoneyManager, SharedCurrencyMoneyField
from invoicing.lines import LineType, line_signed_amount


class InvoiceKind(models.TextChoices):
    INVOICE = "invoice", _("Invoice")
    CREDIT_NOTE = "credit_note", _("Credit note")


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    FINALIZED = "finalized", _("Finalized")
    PAID = "paid", _("Paid")
    VOID = "void", _("Void")


class InvoicePaymentStatus(models.TextChoices):
    """Whether a finalized invoice's money came in (specs/payments.md), beside its document status."""

    UNPAID = "unpaid", _("Unpaid")
    PARTIALLY_PAID = "partially_paid", _("Partially paid")
    PAID = "paid", _("Paid")
    UNCOLLECTIBLE = "uncollectible", _("Uncollectible")


class Invoice(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="invoices")
    kind = models.CharField(max_length=16, choices=InvoiceKind.choices, default=InvoiceKind.INVOICE)
    status = models.CharField(max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    # Assigned at finalization, gapless per tenant, series and year: "INV-2026-000001".
    number = models.CharField(max_length=32, blank=True, default="")
    number_year = models.PositiveSmallIntegerField(null=True, blank=True)
    number_sequence = models.PositiveIntegerField(null=True, blank=True)
    # The billing date D (for a credit note, the day it was issued).
    issue_date = models.DateField()
    currency = models.CharField(max_length=3)
    language = models.CharField(max_length=2, default="en")
    # The totals are Money in the invoice's currency (one currency column for the four of them).
    net_total = SharedCurrencyMoneyField(
        max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES, default=0
    )
    tax_total = SharedCurrencyMoneyField(
        max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES, default=0
    )
    total = SharedCurrencyMoneyField(
        max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES, default=0
    )
    amount_due = SharedCurrencyMoneyField(
        max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES, default=0
    )
    # Payments and the credit balance applied to it, net of refunds (payments.PaymentAllocation);
    # amount_due = max(0, total - credited - amount_paid), kept by payments.ledger.
    amount_paid = SharedCurrencyMoneyField(
        max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES, default=0
    )
    payment_status = models.CharField(
        max_length=16, choices=InvoicePaymentStatus.choices, default=InvoicePaymentStatus.UNPAID
    )
    # issue_date + the customer's payment terms (0 days when it is charged automatically); set at
    # finalization.
    due_date = models.DateField(null=True, blank=True)
    credited_invoice = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes"
    )
    reason = models.CharField(max_length=300, blank=True, default="")
    # The tenant's own string keys and values, never read by Tripod (validate_metadata). Not part of
    # the legal document: it may change after finalization, and the PDF and Factur-X never show it.
    metadata = models.JSONField(default=dict, blank=True)
    bill_run = models.ForeignKey("BillRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="invoices")
    # The shop order whose hardware due at signature it bills at once (``invoicing.services.orders``):
    # issued between billing dates, beside the invoice of its date rather than in its place.
    order = models.ForeignKey(
        "subscriptions.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    # The partner that earns the commission on the invoice (specs/partners.md, "Commissions"): the
    # customer's when the invoice is finalized. A customer moved to another partner (or to none)
    # later leaves the invoices already issued with theirs.
    partner = models.ForeignKey("customers.Partner", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    pdf = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    # When the invoice e-mail went out: set before sending, so a retried render task never sends twice.
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = MoneyManager()

    class Meta:
        ordering = ["-issue_date", "-created_at"]
        constraints = [
            # One invoice per customer per billing date: re-running a bill run creates nothing new.
            # An order's invoice is not the billing date's, and may share its day.
            models.UniqueConstraint(
                fields=["tenant", "customer", "issue_date"],
                condition=Q(kind="invoice") & ~Q(status="void") & Q(order__isnull=True),
                name="invoice_one_per_customer_and_date",
            ),
            # An order is invoiced at once, once (until that invoice is voided).
            models.UniqueConstraint(
                fields=["order"], condition=~Q(status="void") & Q(order__isnull=False), name="invoice_one_per_order"
            ),
            models.UniqueConstraint(
                fields=["tenant", "kind", "number_year", "number_sequence"],
                condition=Q(number_sequence__isnull=False),
                name="invoice_number_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "issue_date"], name="invoice_tenant_status_date"),
            # Dunning and receivables read the open invoices by due date.
            models.Index(
                fields=["tenant", "due_date"],
                condition=Q(status="finalized", kind="invoice", payment_status__in=["unpaid", "partially_paid"]),
                name="invoice_open_by_due_date",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"draft {self.pk}"


class InvoiceLine(models.Model):
    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    type = models.CharField(max_length=16, choices=LineType.choices)
    product = models.CharField(max_length=100)
    # What the line bills: the product's name, or a change's own words ("Unused Basic"). Pages show
    # it with its qualifiers (``invoicing.lines.line_description``); a line written before the
    # qualifiers existed and not recognised then holds its whole description here, and none.
    description = models.CharField(max_length=300)
    qualifiers = models.JSONField(default=dict, blank=True)
    subscription = models.ForeignKey(
        "subscriptions.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    quantity = models.DecimalField(max_digits=28, decimal_places=10)
    unit_amount = models.DecimalField(
        max_digits=settings.UNIT_PRICE_MAX_DIGITS,
        decimal_places=settings.UNIT_PRICE_DECIMAL_PLACES,
        null=True,
        blank=True,
    )
    amount = models.DecimalField(max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES)
    # The unrounded figure ``amount`` was rounded from, for auditors (25.00 x 17/31 = 13.7096774194
    # for 13.71); empty where there was none finer (change lines, credit notes, older lines).
    precise_amount = models.DecimalField(
        max_digits=settings.UNIT_PRICE_MAX_DIGITS,
        decimal_places=settings.UNIT_PRICE_DECIMAL_PLACES,
        null=True,
        blank=True,
    )
    # The product's tax category (standard, reduced, zero, exempt) and the EN 16931 VAT category
    # the tax decision gave the line (S, Z, E, AE, K, G, O: ``catalog.vat``); empty on lines written
    # before the decision existed, whose category follows from ``tax_category``.
    tax_category = models.CharField(max_length=16)
    vat_category = models.CharField(max_length=2, blank=True, default="")
    devices = models.JSONField(default=list, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    # A usage adjustment: late events of a period that an earlier invoice already billed.
    adjustment = models.BooleanField(default=False)
    # The charge a service or change line is in the subscription's ledger: a
    # ``subscriptions.models.ChargeSource`` value (in_advance, activation, change,
    # early_termination); empty for hardware, usage and older lines.
    source = models.CharField(max_length=24, null=True, blank=True)

    class Meta:
        ordering = ["invoice", "position"]

    def __str__(self) -> str:
        return f"{self.type} {self.product} {self.amount}"

    @property
    def signed_amount(self) -> Decimal:
        """The line's effect on the invoice's net total: a credit line subtracts."""
        return line_signed_amount(self.type, self.amount)


class InvoiceTax(models.Model):
    """One VAT breakdown of an invoice, stored as finalized: the lines of a (product tax category,
    EN 16931 VAT category, rate), their base and tax, and for the 0 % and exempt categories the
    exemption reason (code from the VATEX list, and the legal mention in the invoice's language)."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="taxes")
    category = models.CharField(max_length=16)
    vat_category = models.CharField(max_length=2, blank=True, default="")
    exemption_reason_code = models.CharField(max_length=30, blank=True, default="")
    exemption_reason = models.CharField(max_length=300, blank=True, default="")
    rate = models.DecimalField(max_digits=7, decimal_places=4)
    base = models.DecimalField(max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES)
    amount = models.DecimalField(max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES)

    class Meta:
        ordering = ["invoice", "category", "vat_category"]

    def __str__(self) -> str:
        return f"{self.category} {self.rate}%"


class InvoiceNumberSequence(models.Model):
    """The last number used per tenant, series and year; locked while a number is taken."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    series = models.CharField(max_length=16)
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "series", "year"], name="number_sequence_unique")]

    def __str__(self) -> str:
        return f"{self.series}-{self.year}: {self.last}"


class InvoicingSettings(models.Model):
    tenant = models.OneToOneField("tenancy.Tenant", on_delete=models.CASCADE, related_name="invoicing_settings")
    # Finalize (number, PDF, e-mail) as soon as a bill run creates an invoice, or leave drafts for review.
    auto_finalize = models.BooleanField(default=False)
    invoice_prefix = models.CharField(max_length=8, default="INV")
    credit_note_prefix = models.CharField(max_length=8, default="CN")
    # A seller established in the EU always embeds its EN 16931 XML (Factur-X); one established
    # outside the EU only when it turns this on (its invoices then pass the same checks).
    facturx_outside_eu = models.BooleanField(default=False)
    # Whether bill runs still invoice a subscription suspended for non-payment (payments.md).
    bill_while_suspended = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"invoicing settings of {self.tenant_id}"


class BillRunStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    COMPLETED = "completed", _("Completed")
    COMPLETED_WITH_ERRORS = "completed_with_errors", _("Completed with errors")
    FAILED = "failed", _("Failed")


class BillRun(WatchedJob):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    billing_date = models.DateField()
    status = models.CharField(max_length=24, choices=BillRunStatus.choices, default=BillRunStatus.PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0, help_text="invoices created by this run")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"bill run {self.billing_date}"


class BillRunCustomer(models.Model):
    """One customer's outcome in a run: invoiced, already invoiced, nothing to bill, or failed (why)."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    bill_run = models.ForeignKey(BillRun, on_delete=models.CASCADE, related_name="customers")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(max_length=16)  # invoiced | existing | nothing | failed
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bill_run", "customer"], name="bill_run_customer_unique")]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.outcome}"
