"""Reads of payments, their refunds and customers' balance movements."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db.models import Prefetch, Q, QuerySet
from djmoney.money import Money

from invoicing.models import Invoice
from payments.errors import PaymentNotFound
from payments.models import BalanceTransaction, Payment, PaymentAllocation, PaymentStatus
from tenancy.models import Tenant


def payment_list(*, tenant: Tenant, customer: str | None = None, invoice: str | None = None) -> QuerySet[Payment]:
    """The tenant's payments, newest first; ``customer`` by external id, ``invoice`` by id or number."""
    qs = Payment.objects.filter(tenant=tenant).select_related("customer")
    if customer:
        qs = qs.filter(customer__external_id=customer)
    if invoice:
        qs = qs.filter(
            pk__in=PaymentAllocation.objects.filter(invoice__in=invoice_lookup(tenant=tenant, ref=invoice)).values(
                "payment_id"
            )
        )
    return qs.prefetch_related(
        Prefetch(
            "allocations", queryset=PaymentAllocation.objects.select_related("invoice").order_by("created_at", "id")
        ),
        "refunds",
    )


def invoice_lookup(*, tenant: Tenant, ref: str) -> QuerySet[Invoice]:
    """An invoice as the API names it: its id, or its number."""
    try:
        return Invoice.objects.filter(tenant=tenant).filter(Q(pk=uuid.UUID(ref)) | Q(number=ref))
    except ValueError:
        return Invoice.objects.filter(tenant=tenant, number=ref)


def payment_get(*, tenant: Tenant, pk: str) -> Payment:
    try:
        payment = payment_list(tenant=tenant).filter(pk=uuid.UUID(pk)).first()
    except ValueError:
        payment = None
    if payment is None:
        raise PaymentNotFound("No such payment.")
    return payment


def balance_transaction_list(*, tenant: Tenant, customer_id: UUID) -> QuerySet[BalanceTransaction]:
    return BalanceTransaction.objects.filter(tenant=tenant, customer_id=customer_id).select_related("invoice")


def payment_failed_count(*, tenant: Tenant, since: datetime) -> int:
    """The tenant's failed payments received from ``since`` on: the rows of the payments list
    filtered on ``status=failed`` and ``date_from`` (whose day starts at ``since``). One query."""
    return Payment.objects.filter(tenant=tenant, status=PaymentStatus.FAILED, received_at__gte=since).count()


@dataclass(frozen=True)
class BankDetails:
    """What a customer needs to pay an invoice by transfer: the seller's account, the beneficiary
    and the reference to quote so that the payment is matched to the invoice."""

    iban: str  # grouped by 4 as printed: "FR76 3000 6000 0112 3456 7890 189"
    bic: str
    beneficiary: str
    reference: str
    amount_due: Money


def bank_details_for_invoice(*, tenant: Tenant, invoice: Invoice) -> BankDetails | None:
    """The tenant's IBAN and BIC, its name as the seller, and the invoice number as the reference;
    None when the tenant has no IBAN (there is then nowhere to send a transfer)."""
    iban = tenant.iban.replace(" ", "").upper()
    if not iban:
        return None
    return BankDetails(
        iban=" ".join(iban[i : i + 4] for i in range(0, len(iban), 4)),
        bic=tenant.bic,
        beneficiary=tenant.seller_name,
        reference=invoice.number,
        amount_due=invoice.amount_due,
    )
