"""Partners' users and sessions, and the commission statements the tenant pays them
(specs/partners.md). The partner itself is ``customers.Partner``: customers, price resolution and
billing read it."""

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from billing_platform.encryption import EncryptedTextField


class PartnerRole(models.TextChoices):
    """Admins also manage their partner's users; sales create customers and subscriptions."""

    ADMIN = "admin", _("Admin")
    SALES = "sales", _("Sales")


class PartnerUser(models.Model):
    """A person at a partner who logs into the partner dashboard (``/partners/``), invited by the
    tenant's staff or the partner's admins. One address is one partner user per tenant."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    partner = models.ForeignKey("customers.Partner", on_delete=models.CASCADE, related_name="users")
    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True, default="")
    role = models.CharField(max_length=16, choices=PartnerRole.choices, default=PartnerRole.SALES)
    # Blank: the partner's language.
    language = models.CharField(
        max_length=2, choices=[("en", _("English")), ("fr", _("French"))], blank=True, default=""
    )
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
            models.UniqueConstraint(Lower("email"), "tenant", name="partner_user_unique_email_per_tenant"),
        ]
        indexes = [models.Index(fields=["tenant", "partner"], name="partner_user_partner")]

    def __str__(self) -> str:
        return self.email


class PartnerSession(models.Model):
    """A logged-in partner dashboard session, named by the SHA-256 of its cookie's token: its own
    cookie and table, so that neither a staff login nor a portal session opens the dashboard, and a
    partner session opens nothing else. Looked up before the tenant is known: outside row-level
    security (billing_platform/rls.py)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(PartnerUser, on_delete=models.CASCADE, related_name="sessions")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return "partner session of %s" % self.user_id


class PartnerInvitation(models.Model):
    """The e-mailed link that lets an invited partner user in the first time: single-use, 7 days,
    only its token's SHA-256 kept, voided by a newer one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(PartnerUser, on_delete=models.CASCADE, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.CharField(max_length=254, blank=True, default="")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return "partner invitation of %s" % self.user_id

    def is_pending(self, at: datetime) -> bool:
        return self.used_at is None and self.voided_at is None and at < self.expires_at


class PartnerLoginCode(models.Model):
    """A 6-digit code e-mailed to log into the dashboard: 10 minutes, once, at most 5 wrong tries;
    kept as an HMAC keyed by the server's secret and the user."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(PartnerUser, on_delete=models.CASCADE, related_name="login_codes")
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "user", "created_at"], name="partner_login_code_user")]

    def __str__(self) -> str:
        return "partner login code of %s" % self.user_id


class CommissionLeg(models.TextChoices):
    HARDWARE = "hardware", _("Hardware")
    SERVICE = "service", _("Service")
    USAGE = "usage", _("Usage")
    FEE = "fee", _("Fee")


class StatementStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    APPROVED = "approved", _("Approved")
    PAID = "paid", _("Paid")


class CommissionStatement(models.Model):
    """A partner's commission for one calendar month (in the tenant's time zone): one line per
    invoice and leg. A draft is built again until it is approved; an approved statement never
    changes, and whatever comes later goes to the next month's."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    partner = models.ForeignKey("customers.Partner", on_delete=models.PROTECT, related_name="statements")
    # The month's first day.
    month = models.DateField()
    status = models.CharField(max_length=16, choices=StatementStatus.choices, default=StatementStatus.DRAFT)
    currency = models.CharField(max_length=3)
    total = models.DecimalField(
        max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES, default=0
    )
    built_at = models.DateTimeField()
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.CharField(max_length=254, blank=True, default="")
    paid_at = models.DateTimeField(null=True, blank=True)
    # The tenant's payment reference (a transfer's), when marked paid.
    paid_reference = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-month", "partner"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "month", "currency"], name="statement_unique_partner_month"),
        ]
        indexes = [models.Index(fields=["tenant", "status", "month"], name="statement_tenant_status")]

    def __str__(self) -> str:
        return "%s %s" % (self.partner_id, self.month.strftime("%Y-%m"))


class CommissionLine(models.Model):
    """What a statement takes for one invoice and leg: ``amount`` is the commission accrued on the
    invoice's leg at the month's end less what earlier statements took (negative for a clawback).
    ``net_collected`` is the leg's net amount collected in the month, ``rate`` the percentage."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="+")
    statement = models.ForeignKey(CommissionStatement, on_delete=models.CASCADE, related_name="lines")
    invoice = models.ForeignKey("invoicing.Invoice", on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="+")
    leg = models.CharField(max_length=16, choices=CommissionLeg.choices)
    net_collected = models.DecimalField(
        max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES
    )
    rate = models.DecimalField(max_digits=9, decimal_places=4)
    amount = models.DecimalField(max_digits=settings.MONEY_MAX_DIGITS, decimal_places=settings.MONEY_DECIMAL_PLACES)

    class Meta:
        ordering = ["statement", "invoice", "leg"]
        constraints = [
            models.UniqueConstraint(fields=["statement", "invoice", "leg"], name="commission_line_unique"),
        ]
        indexes = [models.Index(fields=["tenant", "invoice", "leg"], name="commission_line_invoice")]

    def __str__(self) -> str:
        return "%s %s %s" % (self.invoice_id, self.leg, self.amount)
