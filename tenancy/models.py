import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from billing_platform.encryption import EncryptedJSONField


class RegistrationScheme(models.TextChoices):
    """ISO/IEC 6523 ICD codes of the seller's legal registration (EN 16931 BT-30 scheme): the
    ``schemeID`` that lets a buyer's system look the identifier up in the right register."""

    SIREN = "0002", _("SIREN (France)")
    SIRET = "0009", _("SIRET (France)")
    SE_ORGNR = "0007", _("Organisationsnummer (Sweden)")
    DUNS = "0060", _("D-U-N-S number")
    GLN = "0088", _("GS1 Global Location Number")
    NL_KVK = "0106", _("KvK number (Netherlands)")
    DK_CVR = "0184", _("CVR number (Denmark)")
    BE_KBO = "0208", _("Enterprise number (Belgium)")


class Tenant(models.Model):
    """One IoT vendor using Tripod. Every row of business data points to exactly one tenant."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    default_currency = models.CharField(max_length=3)
    timezone = models.CharField(max_length=64)
    # Standard Webhooks secrets ("whsec_" + base64) for the device cloud. Several are valid at once
    # so that a vendor can rotate: add the new one, switch the sender, then drop the old one.
    # HMAC keys cannot be hashed (they verify signatures), so the list is encrypted at rest.
    device_cloud_secrets = EncryptedJSONField(default=list, blank=True)
    # The tenant is the seller on every invoice (EN 16931 BG-4). Set through tenant_seller_update,
    # which validates them; blank until the tenant fills them in on the settings page.
    # The registered name (BT-27), e.g. "Smart Fleet Telematics SAS"; blank: ``name`` is used.
    legal_name = models.CharField(max_length=200, blank=True, default="")
    # With its country prefix, e.g. "FR12345678901" (BT-31): required by EN 16931 (BR-S-02) as
    # soon as a line is standard-rated.
    vat_number = models.CharField(max_length=15, blank=True, default="")
    # The company register's number (BT-30), e.g. a SIREN, and the register it comes from.
    legal_registration_id = models.CharField(max_length=35, blank=True, default="")
    legal_registration_scheme = models.CharField(
        max_length=4, blank=True, default="", choices=RegistrationScheme.choices
    )
    address_line1 = models.CharField(max_length=200, blank=True, default="")
    address_line2 = models.CharField(max_length=200, blank=True, default="")
    postal_code = models.CharField(max_length=16, blank=True, default="")
    city = models.CharField(max_length=100, blank=True, default="")
    # ISO 3166-1 alpha-2; blank: the TRIPOD["SELLER_COUNTRY"] setting (FR) is printed instead.
    country = models.CharField(max_length=2, blank=True, default="")
    # Where customers write about their invoices (BT-43, the seller contact's e-mail).
    billing_email = models.EmailField(blank=True, default="")
    # Payment instructions printed on every invoice and carried in its XML (BG-16, BG-17, BG-19).
    # The account customers pay by transfer into (BT-84), with its bank's BIC (BT-86).
    iban = models.CharField(max_length=34, blank=True, default="")
    bic = models.CharField(max_length=11, blank=True, default="")
    # The SEPA creditor identifier (BT-90) under which the tenant collects direct debits.
    sepa_creditor_id = models.CharField(max_length=35, blank=True, default="")
    # Days between an invoice's issue date and its due date (BT-9).
    payment_terms_days = models.PositiveSmallIntegerField(default=30)
    # How new customers pay unless told otherwise: "send_invoice" or "charge_automatically".
    default_collection = models.CharField(max_length=24, default="send_invoice")
    # Legal mentions (notes with their UNTDID 4451 subject codes in the XML). Blank: the defaults
    # of the seller's country are printed (France: the late-payment penalty of three times the
    # legal interest rate, the recovery indemnity for business buyers, no early-payment discount).
    late_payment_penalty = models.CharField(max_length=300, blank=True, default="")
    # The fixed recovery indemnity owed by a business buyer paying late (France: 40 EUR).
    recovery_indemnity = models.DecimalField(max_digits=9, decimal_places=2, default=40)
    early_payment_discount = models.CharField(max_length=300, blank=True, default="")
    # Staff whose role can finalize invoices or issue credit notes must use a second factor (TOTP or
    # a passkey) before the back-office lets them in. Set by owners, through tenant_two_factor_update.
    two_factor_required = models.BooleanField(default=False)
    # The customer portal wears the tenant's colours: its accent colour ("#0b7285") and its logo
    # (PNG, JPEG or SVG, at most 200 KB, served by the portal itself: no external address).
    brand_colour = models.CharField(max_length=7, blank=True, default="")
    logo = models.BinaryField(blank=True, default=b"", editable=True)
    logo_content_type = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def seller_name(self) -> str:
        """The name printed as the seller: the legal name, or the tenant's name until it is set."""
        return self.legal_name or self.name


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    FINANCE_ADMIN = "finance_admin", _("Finance admin")
    FINANCE_VIEWER = "finance_viewer", _("Finance viewer")
    SUPPORT_AGENT = "support_agent", _("Support agent")


class Membership(models.Model):
    """A staff user's role in one tenant; a user may belong to several tenants."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user_per_tenant")]
        ordering = ["tenant__name"]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


class Invitation(models.Model):
    """An owner's invitation to join the tenant's team with a role, e-mailed as a link. Only the
    SHA-256 of the link's token is stored; the link works once, until ``expires_at``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=32, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "email"], name="invitation_tenant_email")]

    def __str__(self) -> str:
        return f"{self.email} → {self.tenant} ({self.role})"

    def is_pending(self, at: datetime) -> bool:
        return self.accepted_at is None and self.revoked_at is None and at < self.expires_at


class ApiKeyScope(models.TextChoices):
    FULL = "full", _("Full access")
    READ = "read", _("Read only")
    INGEST = "ingest", _("Usage ingestion")
    DEVICE_CLOUD = "device_cloud", _("Device cloud webhooks")
    # A partner's key: reaches only the partner routes (/api/v1/partner/...), for its own customers.
    PARTNER = "partner", _("Partner")


class ApiKey(models.Model):
    """A tenant's API key. Only its SHA-256 is stored; the key itself is shown once, at creation."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=16, choices=ApiKeyScope.choices)
    # Set for scope "partner" only: the partner whose customers the key reaches.
    partner = models.ForeignKey(
        "customers.Partner", null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys"
    )
    # The visible start of the key ("tpk_3f9a1c2b"), so staff can tell keys apart without the secret.
    prefix = models.CharField(max_length=32)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ActorType(models.TextChoices):
    USER = "user", _("Staff user")
    API_KEY = "api_key", _("API key")
    SYSTEM = "system", _("System")
    # A person at a customer, in the customer portal (or a portal link's session: no id).
    PORTAL_USER = "portal_user", _("Portal user")
    # A person at a partner (reseller), in the partner dashboard.
    PARTNER_USER = "partner_user", _("Partner user")


class AuditLogEntry(models.Model):
    """Who changed what, when, with the object before and after. Written by services, never edited."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="audit_log")
    at = models.DateTimeField(db_index=True)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    # As long as the longest id recorded: a device-cloud webhook's webhook-id (255).
    object_id = models.CharField(max_length=255)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-at"], name="audit_tenant_at"),
            models.Index(fields=["tenant", "object_type", "object_id"], name="audit_tenant_object"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}:{self.object_id}"


class SavedFilter(models.Model):
    """A back-office list's filter (its query string) saved by a staff user under a name, in one
    tenant: only that user sees it, only in that tenant. The list's own filter form validates the
    query when it is saved and again each time it is applied."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Which list: "invoices", "subscriptions", "customers", "payments" (backoffice.saved_filters.LISTS).
    list = models.CharField(max_length=32)
    name = models.CharField(max_length=80)
    query = models.CharField(max_length=2000, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Saving under a name already used on the list replaces that filter.
            models.UniqueConstraint(fields=["tenant", "user", "list", "name"], name="saved_filter_unique_name")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.list}: {self.name}"
