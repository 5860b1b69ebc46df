"""Revenue recognition's tables (specs/revrec.md): a contract per subscription, its performance
obligations with their allocated amounts and dates, what each calendar month recognized of them,
the periods (a closed one is never changed) and the journal posted for the ledger.

Dates of obligations are local days in the customer's time zone, terms half-open
(``starts_on <= day < ends_on``); a period is named by the first day of its month.
"""

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing_platform.jobs import WatchedJob
from billing_platform.money_fields import MoneyManager, amount_field


class ControlTransfer(models.TextChoices):
    SHIPMENT = "shipment", _("At shipment")
    ACTIVATION = "activation", _("At activation")


class RevrecSettings(models.Model):
    """A tenant's recognition policies: when control of hardware passes to the customer."""

    tenant = models.OneToOneField("tenancy.Tenant", on_delete=models.CASCADE, related_name="revrec_settings")
    hardware_control_transfer = models.CharField(
        max_length=16, choices=ControlTransfer.choices, default=ControlTransfer.ACTIVATION
    )

    def __str__(self) -> str:
        return f"revenue settings of {self.tenant_id}"


class Contract(models.Model):
    """A subscription as ASC 606 sees it: its fixed consideration (the transaction price), in the
    customer's currency, allocated to its performance obligations."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    subscription = models.OneToOneField(
        "subscriptions.Subscription", on_delete=models.PROTECT, related_name="revenue_contract"
    )
    # The plan the obligations are priced on: a subscription now on another plan has changed plan
    # since, a modification the next sync applies (``revrec.modifications``).
    plan = models.ForeignKey("catalog.Plan", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    # The fixed consideration as it stands after the modifications applied so far.
    transaction_price = amount_field()
    created_at = models.DateTimeField()

    objects = MoneyManager()

    def __str__(self) -> str:
        return f"contract of {self.subscription_id}"


class ModificationKind(models.TextChoices):
    ADDED_DEVICES = "added_devices", _("Devices added")
    PLAN_CHANGE = "plan_change", _("Plan change")
    TERMINATION = "termination", _("Termination")


class ContractModification(models.Model):
    """A modification applied to a contract, prospectively from ``effective_on`` (a local day):
    devices added, a change of plan, or a termination (of the whole subscription, or of the devices
    removed from it). Kept so that each is applied once and an accountant can follow how the
    transaction price moved; ``details`` says what changed (devices, plans, fee)."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="modifications")
    kind = models.CharField(max_length=16, choices=ModificationKind.choices)
    effective_on = models.DateField()
    currency = models.CharField(max_length=3)
    transaction_price_before = amount_field()
    transaction_price_after = amount_field()
    details = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    objects = MoneyManager()

    class Meta:
        ordering = ["contract", "effective_on", "id"]
        indexes = [models.Index(fields=["tenant", "effective_on"], name="modification_tenant_day")]

    def __str__(self) -> str:
        return f"{self.kind} {self.effective_on}"


class ObligationKind(models.TextChoices):
    HARDWARE = "hardware", _("Hardware")
    SERVICE = "service", _("Service")
    USAGE = "usage", _("Usage")
    FEE = "fee", _("One-time fee")


class Pattern(models.TextChoices):
    POINT_IN_TIME = "point_in_time", _("Point in time")
    RATABLE = "ratable", _("Ratable by day")


class PerformanceObligation(models.Model):
    """One contract line for one device (``device_id`` blank for a line shared by the
    subscription): its allocated amount and when it is recognized. Dates stay empty until the
    device is activated (or shipped, per the tenant's setting): recognition waits for them."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="obligations")
    kind = models.CharField(max_length=16, choices=ObligationKind.choices)
    product_code = models.CharField(max_length=100)
    device_id = models.CharField(max_length=200, blank=True, default="")
    currency = models.CharField(max_length=3)
    allocated = amount_field()
    pattern = models.CharField(max_length=16, choices=Pattern.choices)
    starts_on = models.DateField(null=True, blank=True)  # ratable: first day of the term
    ends_on = models.DateField(null=True, blank=True)  # ratable: the day after the term
    recognized_on = models.DateField(null=True, blank=True)  # point in time: the day control passes

    objects = MoneyManager()

    class Meta:
        ordering = ["contract", "id"]
        constraints = [
            # A line and device may hold several obligations over time: a usage period each, and
            # after a modification the remaining part from the modification's day (``starts_on``).
            models.UniqueConstraint(
                fields=["contract", "product_code", "device_id", "starts_on"],
                nulls_distinct=False,
                name="obligation_unique_line",
            ),
            models.CheckConstraint(
                condition=Q(starts_on__isnull=True) | Q(ends_on__gt=models.F("starts_on")),
                name="obligation_term_ends_after_start",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "ends_on"], name="obligation_tenant_ends"),
            # The obligations still waiting for their device (``contracts_sync`` dates them): a few
            # rows among a tenant's many, found at every sync.
            models.Index(
                fields=["tenant"],
                condition=Q(starts_on__isnull=True, recognized_on__isnull=True),
                name="obligation_undated",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_code} {self.device_id}".strip()


class RecognitionEntry(models.Model):
    """What one month recognized of one obligation: one posting per obligation and period, so a
    run that is repeated inserts nothing twice."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    obligation = models.ForeignKey(PerformanceObligation, on_delete=models.PROTECT, related_name="entries")
    period = models.DateField()  # first day of the month
    currency = models.CharField(max_length=3)
    amount = amount_field()
    created_at = models.DateTimeField()

    objects = MoneyManager()

    class Meta:
        ordering = ["period", "obligation"]
        constraints = [models.UniqueConstraint(fields=["obligation", "period"], name="recognition_once_per_period")]
        indexes = [models.Index(fields=["tenant", "period"], name="recognition_tenant_period")]

    def __str__(self) -> str:
        return f"{self.obligation_id} {self.period} {self.amount}"


class RevenuePeriod(models.Model):
    """A calendar month of a tenant's books; once closed, nothing posts in it any more."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    month = models.DateField()  # first day of the month
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["month"]
        constraints = [models.UniqueConstraint(fields=["tenant", "month"], name="revenue_period_unique_month")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}"


class JournalSource(models.TextChoices):
    INVOICE = "invoice", _("Invoice")
    CREDIT_NOTE = "credit_note", _("Credit note")
    INVOICE_VOID = "invoice_void", _("Invoice voided")
    RECOGNITION = "recognition", _("Recognition")
    PAYMENT = "payment", _("Payment")
    REFUND = "refund", _("Refund")


class Account(models.TextChoices):
    RECEIVABLE = "receivable", _("Accounts receivable")
    TAX_PAYABLE = "tax_payable", _("Tax payable")
    CONTRACT_BALANCE = "contract_balance", _("Contract balance")
    REVENUE_HARDWARE = "revenue_hardware", _("Revenue: hardware")
    REVENUE_SERVICE = "revenue_service", _("Revenue: service")
    REVENUE_USAGE = "revenue_usage", _("Revenue: usage")
    REVENUE_FEES = "revenue_fees", _("Revenue: fees")
    CASH = "cash", _("Cash")


class JournalEntry(models.Model):
    """A balanced posting of the ledger, in one currency: its lines' debits equal their credits."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    period = models.DateField()  # first day of the month it posts in
    date = models.DateField()
    source_type = models.CharField(max_length=16, choices=JournalSource.choices)
    source_id = models.CharField(max_length=64)
    contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["period", "id"]
        constraints = [
            # A document (invoice, credit note, void, payment, refund) posts once per contract: its
            # receiver called twice writes nothing twice. Recognition posts per run.
            models.UniqueConstraint(
                fields=["tenant", "source_type", "source_id", "contract"],
                condition=~Q(source_type="recognition"),
                nulls_distinct=False,
                name="journal_entry_once_per_document",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "period"], name="journal_tenant_period"),
            models.Index(fields=["tenant", "contract", "date"], name="journal_tenant_contract_date"),
        ]

    def __str__(self) -> str:
        return f"{self.source_type} {self.source_id} {self.date}"


class JournalLine(models.Model):
    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    entry = models.ForeignKey(JournalEntry, on_delete=models.CASCADE, related_name="lines")
    account = models.CharField(max_length=24, choices=Account.choices)
    currency = models.CharField(max_length=3)
    debit = amount_field(default=0)
    credit = amount_field(default=0)

    objects = MoneyManager()

    class Meta:
        ordering = ["entry", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(debit__gte=0) & Q(credit=0)) | (Q(debit=0) & Q(credit__gte=0)),
                name="journal_line_one_side",
            )
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.debit}/{self.credit}"


class RateSource(models.TextChoices):
    MANUAL = "manual", _("Entered by hand")
    CSV = "csv", _("Imported from a CSV file")


class ExchangeRate(models.Model):
    """What one unit of ``currency`` is worth in the tenant's currency (the reporting currency)
    during one calendar month: an amount in ``currency`` times ``rate`` is the amount reported
    (``revrec.rates.RateTable``). Entered by finance or imported from a CSV; a month without a rate
    for a currency in use is reported as missing, never converted at 1."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    month = models.DateField()  # first day of the month
    currency = models.CharField(max_length=3)
    # Ten places, as unit prices: 1 JPY = 0.0061234567 EUR keeps its precision.
    rate = models.DecimalField(max_digits=20, decimal_places=10)
    source = models.CharField(max_length=8, choices=RateSource.choices)
    entered_by = models.CharField(max_length=200, blank=True, default="")
    entered_at = models.DateTimeField()

    class Meta:
        ordering = ["-month", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "month", "currency"], name="exchange_rate_unique_month"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="exchange_rate_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.currency} {self.rate}"


class RecognitionRunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


# A run still to finish: one at a time per tenant and period.
ACTIVE_RUN_STATUSES = (RecognitionRunStatus.QUEUED, RecognitionRunStatus.RUNNING)


class RecognitionRun(WatchedJob):
    """One recognition run of a tenant's month on Celery, by chunks of contracts (``revrec.periods``):
    its progress, what it posted and, when it failed, why. The postings themselves are unique per
    obligation and period, so a run that is started again posts only what is still due."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    month = models.DateField()  # first day of the month
    status = models.CharField(max_length=16, choices=RecognitionRunStatus.choices, default=RecognitionRunStatus.QUEUED)
    total = models.PositiveIntegerField(default=0, help_text="contracts to go through")
    done = models.PositiveIntegerField(default=0, help_text="contracts gone through")
    entries = models.PositiveIntegerField(default=0, help_text="recognition entries posted")
    journal_entries = models.PositiveIntegerField(default=0, help_text="journal entries posted")
    # What the run posted, by currency and stream: [{"currency", "stream", "amount"}], amounts as strings.
    revenue = models.JSONField(default=list, blank=True)
    # The last contract (by id) whose chunk committed: a task delivered again resumes after it.
    cursor = models.CharField(max_length=36, blank=True, default="")
    error = models.TextField(blank=True, default="")
    requested_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "month"],
                condition=Q(status__in=["queued", "running"]),
                name="recognition_run_one_active_per_month",
            )
        ]
        indexes = [models.Index(fields=["tenant", "month", "-created_at"], name="recognition_run_tenant_month")]

    def __str__(self) -> str:
        return f"recognition run {self.month:%Y-%m}"


class ExportFormat(models.TextChoices):
    CSV = "csv", _("CSV")
    JSON = "json", _("JSON")


class ExportTarget(models.Model):
    """An ERP (or any system) that takes the journal: each journal entry goes to it once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100)
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="export_target_unique_name")]

    def __str__(self) -> str:
        return self.name


class JournalExport(models.Model):
    """What one export of a period to a target took: the period's journal entries that no earlier
    export gave that target. Its file is written from ``ExportedEntry`` when downloaded."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    target = models.ForeignKey(ExportTarget, on_delete=models.PROTECT, related_name="exports")
    period = models.DateField()  # first day of the month
    entries = models.PositiveIntegerField(default=0)
    lines = models.PositiveIntegerField(default=0)
    requested_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target", "-created_at"], name="journal_export_target_created")]

    def __str__(self) -> str:
        return f"{self.target_id} {self.period:%Y-%m}"


class ExportedEntry(models.Model):
    """A journal entry a target took, and in which export: once per target (unique), so an entry is
    never sent twice to the same ERP, whatever exports run at the same time."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    target = models.ForeignKey(ExportTarget, on_delete=models.PROTECT, related_name="+")
    export = models.ForeignKey(JournalExport, on_delete=models.CASCADE, related_name="exported")
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["target", "entry"], name="exported_entry_once_per_target")]

    def __str__(self) -> str:
        return f"{self.entry_id} -> {self.target_id}"
