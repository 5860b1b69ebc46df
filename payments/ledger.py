"""Money on invoices: payments allocated, the credit balance, refunds (specs/payments.md).

The rules (``payments.models`` has the tables):

- A payment is allocated to the invoice it names (at most what it still owes) or to the
  customer's open invoices, oldest due first; the rest goes to the customer's credit balance, or
  back to the customer when the tenant's ``credit_destination`` is ``refund``.
- ``invoices_settle`` is the one writer of ``amount_paid``, ``amount_due`` and ``payment_status``
  once an invoice is finalized: one statement recomputes them from the allocations and the credit
  notes.
- Rows that change together are locked in one order, by every path (payments, refunds, credit
  notes, voids, the balance applied at finalization): the customer row, then its invoices by id,
  then payment attempts, then the payment. Two writers racing on one customer wait for each other
  (never a deadlock) and settle on what the first one left; ``invoices_settle`` locks its invoices
  again before it writes, so that it always recomputes from committed rows.
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Q, Sum
from djmoney.money import Money

from billing_platform.errors import FieldError
from billing_platform.money import round_minor
from customers.models import Customer
from invoicing.models import Invoice, InvoiceKind, InvoicePaymentStatus, InvoiceStatus
from payments.errors import (
    InvalidPayment,
    PaymentCurrencyMismatch,
    RefundExceedsPayment,
    RefundNotPossible,
)
from payments.events import invoices_paid_emit, payment_refunded_emit, payment_succeeded_emit
from payments.models import (
    AllocationSource,
    BalanceKind,
    BalanceTransaction,
    CreditDestination,
    Payment,
    PaymentAllocation,
    PaymentSettings,
    PaymentStatus,
    Refund,
)
from payments.signals import payment_recorded, refund_recorded
from subscriptions.models import Subscription, SubscriptionStatus
from tenancy.actors import Actor
from tenancy.services import audit_record

OPEN = (InvoicePaymentStatus.UNPAID, InvoicePaymentStatus.PARTIALLY_PAID)
# Documents whose amounts count: a voided credit note credits nothing.
COUNTED_STATUSES = (InvoiceStatus.FINALIZED, InvoiceStatus.PAID)
REFUNDABLE = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)

__all__ = [
    "credit_destination",
    "customer_balance_move",
    "invoices_settle",
    "invoices_settled",
    "payment_invoice_shares",
    "payment_record",
    "refund_record",
]


def credit_destination(tenant_id: Any) -> str:
    """Where money beyond what is due goes for this tenant: ``balance`` (the default) or ``refund``."""
    found = PaymentSettings.objects.filter(tenant_id=tenant_id).values_list("credit_destination", flat=True).first()
    return found or CreditDestination.BALANCE


def _check_currency(amount: Money, *, customer: Customer, invoice: Invoice | None) -> str:
    currency = amount.currency.code
    if currency != customer.currency:
        raise PaymentCurrencyMismatch(
            "The payment is in %s; customer %s pays in %s." % (currency, customer.external_id, customer.currency),
            errors=[_currency_error(currency, customer.currency)],
        )
    if invoice is not None and currency != invoice.currency:
        raise PaymentCurrencyMismatch(
            "The payment is in %s; invoice %s is in %s." % (currency, invoice.number, invoice.currency),
            errors=[_currency_error(currency, invoice.currency)],
        )
    return currency


def _currency_error(given: str, wanted: str) -> Any:
    return FieldError("currency", PaymentCurrencyMismatch.code, "%s, not %s." % (wanted, given))


def _check_amount(amount: Money, field: str = "amount") -> Decimal:
    value = amount.amount
    currency = amount.currency.code
    if value <= 0 or round_minor(value, currency) != value:
        message = "A positive amount in %s's minor unit." % currency
        raise InvalidPayment(message, errors=[FieldError(field, "invalid_amount", message)])
    return value


def payment_record(
    *,
    customer: Customer,
    amount: Money,
    method: str,
    received_at: datetime,
    actor: Actor,
    at: datetime,
    invoice: Invoice | None = None,
    reference: str = "",
    gateway: str = "manual",
    gateway_id: str = "",
) -> Payment:
    """A succeeded payment, allocated to ``invoice`` or to the customer's open invoices oldest
    first, the rest to the balance; in the caller's transaction, with its events.

    Recorded once per gateway payment: a second call with the same ``(gateway, gateway_id)``
    returns the first payment and changes nothing (the unique constraint decides, not a read)."""
    currency = _check_currency(amount, customer=customer, invoice=invoice)
    value = _check_amount(amount)
    if invoice is not None and (invoice.customer_id != customer.pk or invoice.tenant_id != customer.tenant_id):
        message = "Invoice %s is not customer %s's." % (invoice.number or invoice.pk, customer.external_id)
        raise InvalidPayment(message, errors=[FieldError("invoice", "not_the_customers", message)])
    with transaction.atomic():
        _customer_lock(customer.pk)
        fields = {
            "tenant_id": customer.tenant_id,
            "customer": customer,
            "currency": currency,
            "amount": value,
            "method": method,
            "status": PaymentStatus.SUCCEEDED,
            "received_at": received_at,
            "reference": reference,
            "gateway": gateway,
            "gateway_id": gateway_id,
        }
        if gateway_id:
            try:
                with transaction.atomic():
                    payment = Payment.objects.create(**fields)
            except IntegrityError:
                return Payment.objects.get(tenant_id=customer.tenant_id, gateway=gateway, gateway_id=gateway_id)
        else:
            payment = Payment.objects.create(**fields)
        targets = _open_invoices_locked(customer=customer, invoice=invoice, currency=currency)
        left = value
        allocations = []
        for target in targets:
            share = min(left, target.amount_due.amount)
            if share <= 0:
                continue
            allocations.append(
                PaymentAllocation(
                    tenant_id=customer.tenant_id,
                    invoice=target,
                    source=AllocationSource.PAYMENT,
                    payment=payment,
                    currency=currency,
                    amount=share,
                )
            )
            left -= share
            if left == 0:
                break
        PaymentAllocation.objects.bulk_create(allocations)
        paid = invoices_settle([a.invoice_id for a in allocations], at=at)
        if left > 0:
            _remainder(payment, left, at=at, actor=actor)
        audit_record(
            tenant=customer.tenant,
            actor=actor,
            action="payment.recorded",
            object_type="payment",
            object_id=str(payment.pk),
            at=at,
            after={
                "customer": customer.external_id,
                "amount": str(value),
                "currency": currency,
                "method": method,
                "reference": reference,
                "allocated": {str(a.invoice_id): str(a.amount.amount) for a in allocations},
                "left": str(left),
            },
        )
        payment.refresh_from_db()
        payment_recorded.send(sender=Payment, payment=payment, at=at)
        payment_succeeded_emit(payment, at=at)
        invoices_settled(tenant_id=customer.tenant_id, paid=paid, customer_ids=[customer.pk] if paid else [], at=at)
    return payment


def invoice_lock(invoice_id: Any) -> Invoice:
    """``invoice_id``'s customer row, then the invoice row, locked in the order every writer of
    their money locks them (the module's docstring); the invoice comes with its customer and tenant
    (read, not locked). For the charging and gateway paths, which then lock the attempt."""
    customer_id = Invoice.objects.filter(pk=invoice_id).values_list("customer_id", flat=True).get()
    _customer_lock(customer_id)
    return Invoice.objects.select_for_update(of=("self",)).select_related("customer", "tenant").get(pk=invoice_id)


def _customer_lock(customer_id: Any) -> Customer:
    """The customer's row locked: the first lock every writer of its money takes."""
    return Customer.objects.select_for_update().only("id", "balance").get(pk=customer_id)


def _open_invoices_locked(*, customer: Customer, invoice: Invoice | None, currency: str) -> list[Invoice]:
    """The invoices a payment goes to, locked in id order (the order every writer locks them in),
    then in the order they are paid: the named one, or the customer's open invoices in the
    payment's currency by due date, then issue date.

    A named invoice no longer payable (voided or paid since the payment was started: a card charge
    that succeeds meanwhile) does not refuse the money, which was received: it goes to the
    customer's other open invoices, then the balance. A written-off (uncollectible) invoice named
    by the payment is paid: money recovered late. A draft is refused."""
    qs = Invoice.objects.filter(tenant_id=customer.tenant_id, customer=customer, kind=InvoiceKind.INVOICE)
    open_ones = Q(status__in=COUNTED_STATUSES, payment_status__in=OPEN, amount_due__gt=0, currency=currency)
    if invoice is not None:
        open_ones |= Q(pk=invoice.pk)
    locked = list(qs.filter(open_ones).select_for_update(of=("self",)).only(*_LOCKED_FIELDS).order_by("pk"))
    if invoice is not None:
        named = next((x for x in locked if x.pk == invoice.pk), None)
        if named is None or named.status == InvoiceStatus.DRAFT:
            message = "Only a finalized invoice can be paid."
            raise InvalidPayment(message, errors=[FieldError("invoice", "not_payable", message)])
        if _payable(named, named=True):
            return [named]
        locked = [x for x in locked if x.pk != invoice.pk and _payable(x)]
    return sorted(locked, key=lambda x: (x.due_date or x.issue_date, x.issue_date, x.number))


def _payable(invoice: Invoice, *, named: bool = False) -> bool:
    """Whether a payment may go to ``invoice``: open with something due; a written-off one too when
    the payment names it."""
    statuses = (*OPEN, InvoicePaymentStatus.UNCOLLECTIBLE) if named else OPEN
    return invoice.status in COUNTED_STATUSES and invoice.payment_status in statuses and invoice.amount_due.amount > 0


_LOCKED_FIELDS = (
    "id",
    "tenant_id",
    "customer_id",
    "currency",
    "number",
    "status",
    "payment_status",
    "issue_date",
    "due_date",
    "amount_due",
)


def _remainder(payment: Payment, left: Decimal, *, at: datetime, actor: Actor) -> None:
    """What a payment brings beyond what was due: to the customer's balance, or refunded."""
    if credit_destination(payment.tenant_id) == CreditDestination.REFUND:
        from payments.refunds import payment_refund

        payment_refund(payment=payment, amount=Money(left, payment.currency), reason="overpayment", actor=actor, at=at)
        return
    customer_balance_move(
        customer_id=payment.customer_id,
        tenant_id=payment.tenant_id,
        currency=payment.currency,
        amount=left,
        kind=BalanceKind.OVERPAYMENT,
        payment=payment,
        description="Overpayment",
    )


def customer_balance_move(
    *,
    customer_id: Any,
    tenant_id: Any,
    currency: str,
    amount: Decimal,
    kind: str,
    payment: Payment | None = None,
    invoice: Invoice | None = None,
    refund: Refund | None = None,
    description: str = "",
) -> BalanceTransaction:
    """One movement of a customer's credit balance (positive adds credit), and the balance column
    kept equal to their sum in the same transaction (``F()``: no lost update)."""
    row = BalanceTransaction.objects.create(
        tenant_id=tenant_id,
        customer_id=customer_id,
        currency=currency,
        amount=amount,
        kind=kind,
        payment=payment,
        invoice=invoice,
        refund=refund,
        description=description,
    )
    Customer.objects.filter(pk=customer_id).update(balance=F("balance") + amount)
    return row


_LOCK_SQL = "SELECT id FROM {invoice} WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE"

_SETTLE_SQL = """
WITH counted AS (
    SELECT
        i.id,
        i.payment_status AS before,
        COALESCE((SELECT SUM(a.amount) FROM {allocation} a WHERE a.invoice_id = i.id), 0) AS paid,
        COALESCE((
            SELECT SUM(n.total) FROM {invoice} n
            WHERE n.credited_invoice_id = i.id AND n.kind = 'credit_note' AND n.status IN ('finalized', 'paid')
        ), 0) AS credited,
        i.total
    FROM {invoice} i
    WHERE i.id = ANY(%(ids)s) AND i.kind = 'invoice' AND i.status IN ('finalized', 'paid')
),
settled AS (
    SELECT id, before, paid, GREATEST(0, total - credited - paid) AS due FROM counted
)
UPDATE {invoice} i SET
    amount_paid = settled.paid,
    amount_due = settled.due,
    payment_status = CASE
        WHEN settled.due = 0 THEN 'paid'
        WHEN i.payment_status = 'uncollectible' THEN 'uncollectible'
        WHEN settled.paid > 0 THEN 'partially_paid'
        ELSE 'unpaid'
    END,
    paid_at = CASE WHEN settled.due = 0 THEN COALESCE(i.paid_at, %(at)s) ELSE NULL END
FROM settled
WHERE i.id = settled.id
RETURNING i.id, settled.before, i.payment_status
"""


def invoices_settle(invoice_ids: Sequence[UUID], *, at: datetime) -> list[UUID]:
    """Recompute amount_paid, amount_due and payment_status from the allocations and credit notes, in
    one statement; returns the invoices that became paid.

    ``amount_paid = Σ allocations`` (signed); ``amount_due = max(0, total − Σ credit notes' totals −
    amount_paid)``; a credit note's total is positive (the amount it takes off the invoice)."""
    ids = sorted({str(x) for x in invoice_ids})
    if not ids:
        return []
    sql = _SETTLE_SQL.format(invoice=Invoice._meta.db_table, allocation=PaymentAllocation._meta.db_table)
    with connection.cursor() as cursor:
        # Locked first, in id order: an UPDATE that waited for another writer's lock would otherwise
        # write what it computed from its own snapshot, before that writer's allocations.
        cursor.execute(_LOCK_SQL.format(invoice=Invoice._meta.db_table), {"ids": ids})
        cursor.execute(sql, {"ids": ids, "at": at})
        rows = cursor.fetchall()
    return [row[0] for row in rows if row[2] == InvoicePaymentStatus.PAID and row[1] != InvoicePaymentStatus.PAID]


def invoices_settled(*, tenant_id: Any, paid: Sequence[UUID], customer_ids: Sequence[Any], at: datetime) -> None:
    """After a settlement: ``invoice.paid`` for the invoices that became paid, and the suspended
    subscriptions of ``customer_ids`` (those whose invoices just became paid or were cleared by a
    credit note) reactivated when nothing is overdue any more."""
    invoices_paid_emit(paid, at=at)
    if not customer_ids:
        return
    # Only a customer with a suspended subscription has anything to reactivate (one query).
    suspended = sorted(
        set(
            Subscription.objects.filter(
                tenant_id=tenant_id, customer_id__in=customer_ids, status=SubscriptionStatus.SUSPENDED
            ).values_list("customer_id", flat=True)
        ),
        key=str,
    )
    if suspended:
        from payments.dunning import customers_reactivate_if_clear

        customers_reactivate_if_clear(tenant_id=tenant_id, customer_ids=suspended, at=at)


def payment_invoice_shares(*, payment_id: Any = None, invoice_id: Any = None) -> list[tuple[Any, Any, Decimal]]:
    """``(invoice_id, payment_id, net)`` of the payments' allocations still holding money, newest
    allocation first, for one payment, one invoice, or both."""
    qs = PaymentAllocation.objects.filter(payment__isnull=False)
    if payment_id is not None:
        qs = qs.filter(payment_id=payment_id)
    if invoice_id is not None:
        qs = qs.filter(invoice_id=invoice_id)
    rows = (
        qs.order_by().values("invoice_id", "payment_id").annotate(net=Sum("amount"), last=Max("id")).order_by("-last")
    )
    return [(r["invoice_id"], r["payment_id"], r["net"]) for r in rows if r["net"] > 0]


def refund_record(
    *,
    payment: Payment,
    amount: Money,
    reason: str,
    actor: Actor,
    at: datetime,
    gateway_id: str = "",
    invoice: Invoice | None = None,
    gateway_refund: Callable[[Refund], str] | None = None,
    fact: bool = False,
) -> Refund:
    """A refund of what ``payment`` still holds, taken back from its balance share first, then from
    its invoices (newest allocation first). With ``invoice``, taken back from that invoice only
    (a credit note refunded on a paid invoice).

    Refused (``RefundNotPossible``) when part of it is no longer where the payment put it (its
    balance share applied to later invoices), unless ``fact``: a refund already made (at Stripe) is
    never refused; that part is taken back from the invoices the balance was applied to (newest
    first), then, when nothing is left there, from the balance, which goes negative; an audit
    entry ``payment.refund_taken_back`` marks it for review.

    ``gateway_refund`` gives the money back at the gateway and returns its refund id. It is called
    once every check has passed and the rows are locked, inside the transaction: a gateway that
    refuses rolls everything back; one that refunds while the commit then fails is reconciled by its
    ``charge.refunded`` event, recognised by that id."""
    with transaction.atomic():
        # The lock order: the customer, its invoices by id, then the payment.
        customer = _customer_lock(payment.customer_id)
        shares = payment_invoice_shares(payment_id=payment.pk, invoice_id=invoice.pk if invoice else None)
        applied = _balance_applied(customer_id=customer.pk, currency=payment.currency) if fact else []
        locked = {
            x.pk
            for x in Invoice.objects.select_for_update(of=("self",))
            .filter(pk__in={s[0] for s in shares} | {a[0] for a in applied})
            .only("id")
            .order_by("pk")
        }
        payment = (
            Payment.objects.select_for_update(of=("self",)).select_related("tenant", "customer").get(pk=payment.pk)
        )
        if amount.currency.code != payment.currency:
            message = "The refund must be in the payment's currency, %s." % payment.currency
            raise PaymentCurrencyMismatch(message, errors=[FieldError("currency", "currency_mismatch", message)])
        value = _check_amount(amount)
        if payment.status not in REFUNDABLE:
            raise RefundNotPossible("A %s payment cannot be refunded." % payment.status)
        holds = payment.amount.amount - payment.amount_refunded.amount
        if value > holds:
            message = "At most %s %s: what the payment still holds." % (
                round_minor(holds, payment.currency),
                payment.currency,
            )
            raise RefundExceedsPayment(message, errors=[FieldError("amount", "exceeds_payment", message)])
        refund = Refund.objects.create(
            tenant_id=payment.tenant_id,
            payment=payment,
            currency=payment.currency,
            amount=value,
            reason=reason,
            gateway_id=gateway_id,
        )
        left = value
        if invoice is None:
            on_balance = Decimal(
                BalanceTransaction.objects.filter(payment=payment).aggregate(s=Sum("amount"))["s"] or 0
            )
            # Money never placed (an overpayment refunded as it is recorded) goes back first.
            allocated = sum((net for _, _, net in shares), Decimal(0))
            left -= min(left, max(Decimal(0), holds - allocated - on_balance))
            take = min(left, on_balance, customer.balance)
            if take > 0:
                _balance_refunded(payment, refund, take)
                left -= take
        if left > 0 and shares:
            allocations = []
            for invoice_id, _, net in shares:
                if invoice_id not in locked or left == 0:
                    continue
                take = min(left, net)
                allocations.append(
                    PaymentAllocation(
                        tenant_id=payment.tenant_id,
                        invoice_id=invoice_id,
                        source=AllocationSource.REFUND,
                        payment=payment,
                        refund=refund,
                        currency=payment.currency,
                        amount=-take,
                    )
                )
                left -= take
            PaymentAllocation.objects.bulk_create(allocations)
            invoices_settle([a.invoice_id for a in allocations], at=at)
        if left > 0 and not fact:
            raise RefundNotPossible(
                "%s %s of this payment is no longer where it was put (its credit balance share was applied "
                "to later invoices): credit those invoices first."
                % (round_minor(left, payment.currency), payment.currency)
            )
        if left > 0:
            _refund_taken_back(payment=payment, refund=refund, left=left, applied=applied, actor=actor, at=at)
        if gateway_refund is not None:
            refund.gateway_id = gateway_refund(refund)
            refund.save(update_fields=["gateway_id"])
        payment.amount_refunded = Money(payment.amount_refunded.amount + value, payment.currency)
        payment.status = (
            PaymentStatus.REFUNDED if payment.amount_refunded == payment.amount else PaymentStatus.PARTIALLY_REFUNDED
        )
        payment.save(update_fields=["amount_refunded", "status"])
        refund_recorded.send(sender=Refund, refund=refund, payment=payment, at=at)
        audit_record(
            tenant=payment.tenant,
            actor=actor,
            action="payment.refunded",
            object_type="payment",
            object_id=str(payment.pk),
            at=at,
            after={"refund": str(refund.pk), "amount": str(value), "currency": payment.currency, "reason": reason},
        )
        payment_refunded_emit(payment, refund, at=at)
    return refund


def _balance_refunded(payment: Payment, refund: Refund, amount: Decimal) -> None:
    """``amount`` of the refund leaves the customer's credit balance, attributed to the payment."""
    customer_balance_move(
        customer_id=payment.customer_id,
        tenant_id=payment.tenant_id,
        currency=payment.currency,
        amount=-amount,
        kind=BalanceKind.REFUND,
        payment=payment,
        refund=refund,
        description=refund.reason,
    )


def _balance_applied(*, customer_id: Any, currency: str) -> list[tuple[Any, Decimal]]:
    """``(invoice_id, net)`` of the credit balance still applied to the customer's invoices in
    ``currency``, newest application first."""
    rows = (
        PaymentAllocation.objects.filter(
            invoice__customer_id=customer_id,
            invoice__kind=InvoiceKind.INVOICE,
            invoice__status__in=COUNTED_STATUSES,
            source=AllocationSource.BALANCE,
            currency=currency,
        )
        .order_by()
        .values("invoice_id")
        .annotate(net=Sum("amount"), last=Max("id"))
        .order_by("-last")
    )
    return [(r["invoice_id"], r["net"]) for r in rows if r["net"] > 0]


def _refund_taken_back(
    *,
    payment: Payment,
    refund: Refund,
    left: Decimal,
    applied: Sequence[tuple[Any, Decimal]],
    actor: Actor,
    at: datetime,
) -> None:
    """The part of a refund already made that is no longer where the payment put it: its balance
    share was applied to later invoices. The balance is taken back from those invoices (newest
    first: they are due again), then the balance itself goes negative; flagged for review.

    Each amount taken back from an invoice is two balance movements, +x (the application undone)
    and −x (refunded, attributed to the payment), so the balance's total does not change and the
    payment's share on the balance stays exact."""
    currency = payment.currency
    taken: dict[str, str] = {}
    allocations = []
    for invoice_id, net in applied:
        if left == 0:
            break
        take = min(left, net)
        undone = customer_balance_move(
            customer_id=payment.customer_id,
            tenant_id=payment.tenant_id,
            currency=currency,
            amount=take,
            kind=BalanceKind.APPLIED,
            invoice=Invoice(pk=invoice_id),
            refund=refund,
            description="Taken back for a refund made at the gateway",
        )
        allocations.append(
            PaymentAllocation(
                tenant_id=payment.tenant_id,
                invoice_id=invoice_id,
                source=AllocationSource.BALANCE,
                balance_transaction=undone,
                refund=refund,
                currency=currency,
                amount=-take,
            )
        )
        _balance_refunded(payment, refund, take)
        taken[str(invoice_id)] = str(round_minor(take, currency))
        left -= take
    PaymentAllocation.objects.bulk_create(allocations)
    invoices_settle([a.invoice_id for a in allocations], at=at)
    if left > 0:
        _balance_refunded(payment, refund, left)
    audit_record(
        tenant=payment.tenant,
        actor=actor,
        action="payment.refund_taken_back",
        object_type="payment",
        object_id=str(payment.pk),
        at=at,
        after={
            "review": True,
            "refund": str(refund.pk),
            "currency": currency,
            "taken_back_from_invoices": taken,
            "balance_debited": str(round_minor(left, currency)),
        },
    )
