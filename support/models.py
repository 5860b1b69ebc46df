"""Support cases: a customer's billing question (often about an invoice), the conversation between the
customer and the tenant's staff, and the credit notes issued to settle it.

A case moves between three statuses (``support.services`` holds the one table of moves): a staff
answer leaves it ``waiting_on_customer``, a customer's message puts it back ``open``, and staff
resolve or reopen it. The first staff answer is stamped once (``first_response_at``): a case still
without one past the tenant's first-response target is overdue (``support.selectors``).
"""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

# A first-response target between one hour and 30 days.
FIRST_RESPONSE_HOURS_MAX = 720
DEFAULT_FIRST_RESPONSE_HOURS = 24


class CaseStatus(models.TextChoices):
    OPEN = "open", _("Open")
    WAITING_ON_CUSTOMER = "waiting_on_customer", _("Waiting on customer")
    RESOLVED = "resolved", _("Resolved")


class AuthorType(models.TextChoices):
    STAFF = "staff", _("Staff")
    CUSTOMER = "customer", _("Customer")


class SupportSettings(models.Model):
    """The tenant's support settings; a tenant without a row has the defaults."""

    tenant = models.OneToOneField("tenancy.Tenant", on_delete=models.CASCADE, related_name="support_settings")
    # How long a new case may wait for its first staff answer before it is overdue.
    first_response_hours = models.PositiveIntegerField(
        default=DEFAULT_FIRST_RESPONSE_HOURS,
        validators=[MinValueValidator(1), MaxValueValidator(FIRST_RESPONSE_HOURS_MAX)],
    )

    def __str__(self) -> str:
        return f"support settings of {self.tenant_id}"


class SupportCase(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="support_cases")
    subject = models.CharField(max_length=200)
    # The invoice the question is about, when there is one ("this line is wrong").
    invoice = models.ForeignKey(
        "invoicing.Invoice", on_delete=models.PROTECT, null=True, blank=True, related_name="support_cases"
    )
    status = models.CharField(max_length=32, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    # A member of the tenant's team; unassigned cases go to the support agents (``support.mail``).
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Who opened it: the customer (from the portal) or staff, with the actor's id and a label kept
    # as they were, so the case still reads right after a portal user or a key is gone.
    opened_by_type = models.CharField(max_length=16, choices=AuthorType.choices)
    opened_by_id = models.CharField(max_length=64, blank=True, default="")
    opened_by_label = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField()
    last_message_at = models.DateTimeField()
    # Stamped by the first staff answer and never moved again: the first-response target reads it.
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    credit_notes = models.ManyToManyField(
        "invoicing.Invoice", through="SupportCaseCreditNote", related_name="+", blank=True
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "status", "-created_at"], name="support_case_tenant_status"),
            models.Index(fields=["tenant", "customer", "-created_at"], name="support_case_tenant_customer"),
        ]

    def __str__(self) -> str:
        return self.subject


class SupportMessage(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey(SupportCase, on_delete=models.CASCADE, related_name="messages")
    author_type = models.CharField(max_length=16, choices=AuthorType.choices)
    author_id = models.CharField(max_length=64, blank=True, default="")
    author_label = models.CharField(max_length=255, blank=True, default="")
    body = models.TextField()
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["tenant", "case", "at"], name="support_message_case_at")]

    def __str__(self) -> str:
        return f"{self.author_type} message on {self.case_id}"


class SupportCaseCreditNote(models.Model):
    """A credit note issued from a case: the case it settles, kept beside the note (invoicing's own
    tables stay as they are). A note settles one case at most."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey(SupportCase, on_delete=models.CASCADE, related_name="credit_note_links")
    credit_note = models.OneToOneField("invoicing.Invoice", on_delete=models.PROTECT, related_name="support_case_link")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"credit note {self.credit_note_id} of case {self.case_id}"
