"""The catalog: what is sold (products), how usage is measured (meters), the offers (plans and their
components) and their effective-dated prices (price versions, customer overrides), plus tax rates.

A published price version is never edited: a price change is a new version with its own
``effective_from``. Prices are looked up "as of" an instant (``catalog/versions.py``).
"""

import uuid
from datetime import date

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateRangeField, RangeOperators
from django.db import models
from django.db.models import F, Q, Value
from django.utils.translation import gettext_lazy as _

from billing_platform.money_fields import MoneyManager, SharedCurrencyMoneyField


class ProductKind(models.TextChoices):
    HARDWARE = "hardware", _("Hardware")
    SERVICE = "service", _("Service")
    USAGE = "usage", _("Usage")
    FEE = "fee", _("One-time fee")


class RevenueTreatment(models.TextChoices):
    POINT_IN_TIME = "point_in_time", _("Point in time")
    RATABLE = "ratable", _("Ratable over the service period")
    AS_CONSUMED = "as_consumed", _("As consumed")


DEFAULT_REVENUE_TREATMENT = {
    ProductKind.HARDWARE: RevenueTreatment.POINT_IN_TIME,
    ProductKind.SERVICE: RevenueTreatment.RATABLE,
    ProductKind.USAGE: RevenueTreatment.AS_CONSUMED,
    ProductKind.FEE: RevenueTreatment.POINT_IN_TIME,
}


class TaxCategory(models.TextChoices):
    STANDARD = "standard", _("Standard rate")
    REDUCED = "reduced", _("Reduced rate")
    ZERO = "zero", _("Zero rated")
    EXEMPT = "exempt", _("Exempt")


class Product(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="products")
    code = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=16, choices=ProductKind.choices)
    revenue_treatment = models.CharField(max_length=16, choices=RevenueTreatment.choices)
    tax_category = models.CharField(max_length=16, choices=TaxCategory.choices, default=TaxCategory.STANDARD)
    # Fulfilment, kept apart from the commercial definition: must it be shipped, activated?
    requires_shipment = models.BooleanField(default=False)
    requires_activation = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["tenant", "code"], name="product_unique_code")]

    def __str__(self) -> str:
        return self.code


class ProductSsp(models.Model):
    """Standalone selling price per currency: the basis of ASC 606 allocation."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="ssps")
    currency = models.CharField(max_length=3)
    amount = SharedCurrencyMoneyField(
        max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES
    )

    objects = MoneyManager()

    class Meta:
        ordering = ["currency"]
        constraints = [models.UniqueConstraint(fields=["product", "currency"], name="ssp_unique_currency")]

    def __str__(self) -> str:
        return f"{self.product} {self.amount} {self.currency}"


class Aggregation(models.TextChoices):
    COUNT = "count", _("Count of events")
    SUM = "sum", _("Sum of a property")
    MAX = "max", _("Maximum of a property")
    UNIQUE_COUNT = "unique_count", _("Count of distinct values")
    LATEST = "latest", _("Latest value")


class Meter(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="meters")
    code = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    aggregation = models.CharField(max_length=16, choices=Aggregation.choices)
    # The event property aggregated; empty for ``count``.
    field = models.CharField(max_length=100, blank=True, default="")
    # {"property": "value"}: only matching events count.
    filters = models.JSONField(default=dict, blank=True)
    # Event properties that prices may depend on (matrix pricing).
    dimensions = models.JSONField(default=list, blank=True)
    # {"peak": ["08:00", "20:00"]}, in the customer's time zone; the rest of the day is "off_peak".
    time_bands = models.JSONField(default=dict, blank=True)
    # Whether an event's field may be negative (sum, max and latest meters). Off by default: a
    # negative data volume is a client bug that would lower the bill, so ingestion refuses it; a
    # meter of net energy or a temperature says it accepts them.
    accepts_negative = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["tenant", "code"], name="meter_unique_code")]

    def __str__(self) -> str:
        return self.code


class DateRange(models.Func):
    """PostgreSQL's ``daterange(lower, upper, bounds)``."""

    function = "daterange"
    output_field = DateRangeField()


# The start of the period of a rate given without one: "since always". Rates written before rates
# had periods were given this start by migration 0006.
TAX_RATE_SINCE_ALWAYS = date(1900, 1, 1)


class TaxRate(models.Model):
    """The rate of a (country, tax category) over a period of days: from ``valid_from`` to
    ``valid_to`` included (open-ended when empty). An invoice takes the rate in force on its issue
    date; the periods of one (country, category) never overlap (the database refuses it)."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="tax_rates")
    country = models.CharField(max_length=2)
    tax_category = models.CharField(max_length=16, choices=TaxCategory.choices)
    rate = models.DecimalField(max_digits=7, decimal_places=4, help_text="percent, e.g. 20.0000")
    valid_from = models.DateField(default=TAX_RATE_SINCE_ALWAYS)
    # The last day the rate applies; null: until a later period is given an end.
    valid_to = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["country", "tax_category", "valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "country", "tax_category", "valid_from"], name="tax_rate_unique"),
            # Two periods of one (country, category) never share a day: "[]" includes both ends, and a
            # null end is unbounded. Needs btree_gist for the equality parts (migration 0006).
            ExclusionConstraint(
                name="tax_rate_periods_do_not_overlap",
                expressions=[
                    ("tenant", RangeOperators.EQUAL),
                    ("country", RangeOperators.EQUAL),
                    ("tax_category", RangeOperators.EQUAL),
                    (DateRange("valid_from", "valid_to", Value("[]")), RangeOperators.OVERLAPS),
                ],
            ),
            models.CheckConstraint(condition=Q(rate__gte=0) & Q(rate__lte=100), name="tax_rate_0_100"),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=F("valid_from")), name="tax_rate_period_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.country} {self.tax_category} {self.rate}% from {self.valid_from}"


class Interval(models.TextChoices):
    MONTH = "month", _("Monthly")
    QUARTER = "quarter", _("Quarterly")
    YEAR = "year", _("Yearly")


INTERVAL_MONTHS = {Interval.MONTH: 1, Interval.QUARTER: 3, Interval.YEAR: 12}


class Plan(models.Model):
    """An offer (bundle): hardware, per-device service and metered usage sold together."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="plans")
    code = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    interval = models.CharField(max_length=8, choices=Interval.choices, default=Interval.MONTH)
    trial_days = models.PositiveIntegerField(default=0)
    commitment_months = models.PositiveIntegerField(default=0)
    # What an immediate cancellation inside the commitment costs: nothing, or the per-device service
    # fees of the committed months left after the current period.
    early_termination = models.CharField(
        max_length=16, choices=[("none", _("None")), ("remaining_fees", _("Remaining committed fees"))], default="none"
    )
    # Offered in the customer portal's shop: customers may order it themselves (portal.md, "Shop").
    self_service = models.BooleanField(default=False)
    # Offered to partners: they may subscribe their customers to it (partners.md).
    partner_visible = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["tenant", "code"], name="plan_unique_code")]

    def __str__(self) -> str:
        return self.code


class BillOn(models.TextChoices):
    SIGNATURE = "signature", _("At signature")
    SHIPMENT = "shipment", _("At shipment")
    ACTIVATION = "activation", _("At activation")


class StartsOn(models.TextChoices):
    SUBSCRIPTION_START = "subscription_start", _("Subscription start")
    ACTIVATION = "activation", _("Device activation")


class PlanComponent(models.Model):
    """One leg of an offer. Its structure lives here; its price lives in the plan's price versions."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="components")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=ProductKind.choices)
    position = models.PositiveSmallIntegerField(default=0)
    # hardware: N equal parts on N consecutive billing dates (the last absorbs the rounding).
    instalments = models.PositiveSmallIntegerField(default=1)
    bill_on = models.CharField(max_length=16, choices=BillOn.choices, default=BillOn.SIGNATURE)
    # service: billed in advance, per device or once per subscription.
    per_device = models.BooleanField(default=True)
    starts_on = models.CharField(max_length=24, choices=StartsOn.choices, default=StartsOn.ACTIVATION)
    # usage: billed in arrears from a meter, pooled over the subscription's devices or per device.
    meter = models.ForeignKey(Meter, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    pooled = models.BooleanField(default=True)
    included_per_device = models.DecimalField(max_digits=28, decimal_places=10, null=True, blank=True)

    class Meta:
        ordering = ["plan", "position"]
        constraints = [models.UniqueConstraint(fields=["plan", "product"], name="component_unique_product")]

    def __str__(self) -> str:
        return f"{self.plan}/{self.product}"


class PriceVersion(models.Model):
    """The prices of every component of a plan, in one currency (and region), from an instant on."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="price_versions")
    currency = models.CharField(max_length=3)
    # Country codes this version applies to; empty for the plan's default book in that currency.
    regions = models.JSONField(default=list, blank=True)
    # Canonical form of ``regions`` ("DE,FR"), for the uniqueness constraint.
    regions_key = models.CharField(max_length=500, blank=True, default="")
    # The named price book (a partner's wholesale prices, ``Partner.price_book``) this version is
    # part of; empty for the tenant's region and default books, which never read a book's versions.
    price_book = models.CharField(max_length=64, blank=True, default="")
    # Null: in effect from the beginning.
    effective_from = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["plan", "currency", "price_book", "regions_key", "effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "currency", "price_book", "regions_key", "effective_from"],
                name="price_version_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        book = f" book {self.price_book}" if self.price_book else ""
        return (
            f"{self.plan} {self.currency}{book} {self.regions_key or 'default'} from {self.effective_from or 'start'}"
        )


class ComponentPrice(models.Model):
    """A component's price inside a version: ``price`` (hardware, fees) or a ``charge`` (service, usage)."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    version = models.ForeignKey(PriceVersion, on_delete=models.CASCADE, related_name="prices")
    component = models.ForeignKey(PlanComponent, on_delete=models.CASCADE, related_name="prices")
    price = models.DecimalField(
        null=True,
        blank=True,
        max_digits=settings.UNIT_PRICE_MAX_DIGITS,
        decimal_places=settings.UNIT_PRICE_DECIMAL_PLACES,
    )
    charge = models.JSONField(null=True, blank=True)
    min_amount = models.DecimalField(
        null=True, blank=True, max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES
    )
    max_amount = models.DecimalField(
        null=True, blank=True, max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "component"], name="component_price_unique")]

    def __str__(self) -> str:
        return f"{self.version}: {self.component}"


class PriceOverride(models.Model):
    """A price negotiated with one customer for one component; it beats region and default books."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    component = models.ForeignKey(PlanComponent, on_delete=models.CASCADE, related_name="overrides")
    # The price and its bounds are Money in the customer's currency, this column.
    currency = models.CharField(max_length=3)
    price = SharedCurrencyMoneyField(
        null=True,
        blank=True,
        max_digits=settings.UNIT_PRICE_MAX_DIGITS,
        decimal_places=settings.UNIT_PRICE_DECIMAL_PLACES,
    )
    charge = models.JSONField(null=True, blank=True)
    min_amount = SharedCurrencyMoneyField(
        null=True, blank=True, max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES
    )
    max_amount = SharedCurrencyMoneyField(
        null=True, blank=True, max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES
    )
    effective_from = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = MoneyManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "component", "effective_from"], name="price_override_unique", nulls_distinct=False
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer}: {self.component}"
