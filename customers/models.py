import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from billing_platform.encryption import EncryptedTextField


class Language(models.TextChoices):
    EN = "en", _("English")
    FR = "fr", _("French")


class Collection(models.TextChoices):
    """How an invoice's money is collected (the names Stripe users know)."""

    CHARGE_AUTOMATICALLY = "charge_automatically", _("Charge automatically")
    SEND_INVOICE = "send_invoice", _("Send invoice")


class PartnerStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    INACTIVE = "inactive", _("Inactive")


class Partner(models.Model):
    """A reseller, integrator or distributor that sells the tenant's offers to its own customers
    (specs/partners.md). Its row lives here, beside the customers it brings, because customers,
    price resolution and billing read it; what partners do and earn (their users, commissions and
    statements) lives in the ``partners`` app.

    ``commission_plan`` is ``{leg: rate}`` per leg (``hardware``, ``service``, ``usage``, ``fee``),
    a rate being a percentage as a string or ``{"tiers": [{"up_to": "10000.00", "rate": "20"},
    {"up_to": null, "rate": "25"}]}``; ``partners.plans`` reads and checks it. ``price_book`` names
    the price versions (``catalog.PriceVersion.price_book``) its customers are priced from; blank:
    the tenant's region and default books."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    # The tenant's own identifier, used in API paths (/partners/{code}).
    code = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    email = models.EmailField(max_length=254, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="")
    currency = models.CharField(max_length=3)
    # The language of its statements and of its users' e-mails by default.
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.EN)
    commission_plan = models.JSONField(default=dict, blank=True)
    price_book = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16, choices=PartnerStatus.choices, default=PartnerStatus.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "code"], name="partner_unique_code")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


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
    # The partner that sold to this customer and earns commission on what it pays; null: a direct
    # customer. Partners see their own customers and nothing else.
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="customers")
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


class PortalRole(models.TextChoices):
    """What a portal user may do for its customer: admins also manage the customer's portal users;
    billing pays, changes plans and buys; viewers only look."""

    ADMIN = "admin", _("Admin")
    BILLING = "billing", _("Billing")
    VIEWER = "viewer", _("Viewer")


class PortalUser(models.Model):
    """A person at one of the tenant's customers who logs into the customer portal (``/portal/``).
    One address is one portal user per tenant: it logs in on the tenant's portal page and lands in
    its customer's account. No password is needed: a code e-mailed at each login will do."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="portal_users")
    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True, default="")
    role = models.CharField(max_length=16, choices=PortalRole.choices, default=PortalRole.ADMIN)
    # Blank: the customer's language.
    language = models.CharField(max_length=2, choices=Language.choices, blank=True, default="")
    # A Django password hash; blank: this user logs in with e-mailed codes only.
    password = models.CharField(max_length=128, blank=True, default="")
    # The TOTP key of the optional second factor, encrypted at rest; blank: none set up.
    totp_secret = EncryptedTextField(blank=True, default="")
    is_active = models.BooleanField(default=True)
    invited_at = models.DateTimeField(null=True, blank=True)
    invited_by = models.CharField(max_length=254, blank=True, default="")
    last_login_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), "tenant", name="portal_user_unique_email_per_tenant"),
        ]
        indexes = [models.Index(fields=["tenant", "customer"], name="portal_user_customer")]

    def __str__(self) -> str:
        return self.email


class PortalLink(models.Model):
    """A single-use address that opens a portal session for a customer (``POST
    /api/v1/customers/{id}/portal_sessions``), for tenants that embed the portal in their own app.
    Only the token's SHA-256 is kept; it is looked up before the tenant is known, so the table stays
    outside row-level security (billing_platform/rls.py)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    return_url = models.URLField(max_length=2000, blank=True, default="")
    created_by = models.CharField(max_length=254, blank=True, default="")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return "portal link for %s" % self.customer_id


class PortalSession(models.Model):
    """A logged-in portal session, named by the SHA-256 of its cookie's token. Separate from staff
    sessions: a staff login grants nothing in the portal and a portal session nothing elsewhere.
    ``user`` is empty for a session opened by a portal link (the customer's own app vouches for
    whoever follows it); such a session may go back to ``return_url``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(PortalUser, on_delete=models.CASCADE, null=True, blank=True, related_name="sessions")
    key_hash = models.CharField(max_length=64, unique=True)
    return_url = models.URLField(max_length=2000, blank=True, default="")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return "portal session of %s" % self.customer_id


class PortalInvitation(models.Model):
    """The e-mailed link that lets an invited portal user in for the first time (and set a password
    if they want one). Only the SHA-256 of the link's token is kept; it works once, for 7 days, and
    a newer invitation to the same user voids it. The link names the tenant's portal
    (``/portal/<slug>/invitation/<token>/``), so it is read under the tenant's row-level security."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(PortalUser, on_delete=models.CASCADE, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.CharField(max_length=254, blank=True, default="")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return "portal invitation of %s" % self.user_id

    def is_pending(self, at: datetime) -> bool:
        return self.used_at is None and self.voided_at is None and at < self.expires_at


class PortalLoginCode(models.Model):
    """A 6-digit code e-mailed to log into the portal: valid 10 minutes, once, at most 5 wrong tries;
    a new code voids the older ones. Kept as an HMAC keyed by the server's secret and the code's
    user, so a database dump does not give the code away (a plain hash of 6 digits would)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(PortalUser, on_delete=models.CASCADE, related_name="login_codes")
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "user", "created_at"], name="portal_login_code_user")]

    def __str__(self) -> str:
        return "portal login code of %s" % self.user_id
