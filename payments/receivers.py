"""What payments does when invoicing announces a change (invoicing.signals), in the change's
transaction: the credit balance applied to invoices just finalized and their first charge queued,
a credit note settled on the invoice it credits, a voided invoice's money moved to the balance."""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.dispatch import receiver
from djmoney.money import Money

from customers.models import Collection, Customer
from invoicing.models import Invoice
from invoicing.signals import credit_note_finalized, invoice_voided, invoices_finalized
from payments.ledger import (
    credit_destination,
    customer_balance_move,
    invoices_settle,
    invoices_settled,
    payment_invoice_shares,
)
from payments.models import (
    AllocationSource,
    BalanceKind,
    BalanceTransaction,
    CreditDestination,
    Payment,
    PaymentAllocation,
)
from tenancy.actors import Actor

SYSTEM = Actor.system("payments")


@receiver(invoices_finalized, dispatch_uid="payments.invoices_finalized")
def on_invoices_finalized(sender: Any, *, invoices: Sequence[Invoice], at: datetime, **kwargs: Any) -> None:
    by_tenant: dict[Any, list[Invoice]] = defaultdict(list)
    for invoice in invoices:
        by_tenant[invoice.tenant_id].append(invoice)
    for tenant_id, group in by_tenant.items():
        balance_apply(tenant_id=tenant_id, invoices=group, at=at)
        _charge_automatically(tenant_id=tenant_id, invoices=group)


def balance_apply(*, tenant_id: Any, invoices: Sequence[Invoice], at: datetime) -> list[Any]:
    """Each customer's positive balance applied to its invoices just finalized, oldest first, as
    an allocation (source ``balance``) and a balance movement (kind ``applied``). One query finds
    the customers with a balance (locked, so a refund from the balance waits); nothing more when
    none has one. Returns the invoices that became paid."""
    customer_ids = sorted({x.customer_id for x in invoices}, key=str)
    holders = list(
        Customer.objects.select_for_update(of=("self",))
        .filter(pk__in=customer_ids, balance__gt=0)
        .only("id", "balance", "currency")
        .order_by("pk")
    )
    if not holders:
        return []
    balance = {c.pk: c.balance for c in holders}
    movements: list[BalanceTransaction] = []
    targets: list[Invoice] = []
    for invoice in sorted(
        (x for x in invoices if x.customer_id in balance),
        key=lambda x: (x.due_date or x.issue_date, x.issue_date, x.number),
    ):
        take = min(balance[invoice.customer_id], invoice.amount_due.amount)
        if take <= 0 or invoice.currency != _currency_of(holders, invoice.customer_id):
            continue
        balance[invoice.customer_id] -= take
        movements.append(
            BalanceTransaction(
                tenant_id=tenant_id,
                customer_id=invoice.customer_id,
                currency=invoice.currency,
                amount=-take,
                kind=BalanceKind.APPLIED,
                invoice=invoice,
                description="Applied to %s" % invoice.number,
            )
        )
        targets.append(invoice)
    if not movements:
        return []
    BalanceTransaction.objects.bulk_create(movements)
    PaymentAllocation.objects.bulk_create(
        [
            PaymentAllocation(
                tenant_id=tenant_id,
                invoice=invoice,
                source=AllocationSource.BALANCE,
                balance_transaction=movement,
                currency=invoice.currency,
                amount=-movement.amount.amount,
            )
            for invoice, movement in zip(targets, movements, strict=True)
        ]
    )
    for holder in holders:
        if balance[holder.pk] != holder.balance:
            Customer.objects.filter(pk=holder.pk).update(balance=balance[holder.pk])
    paid = invoices_settle([x.pk for x in targets], at=at)
    # The invoice objects the caller holds say what was still due after the balance.
    due = dict(Invoice.objects.filter(pk__in=[x.pk for x in targets]).values_list("pk", "amount_due"))
    for invoice in targets:
        invoice.amount_due = Money(due[invoice.pk], invoice.currency)
    paid_customers = {x.customer_id for x in targets if x.pk in set(paid)}
    invoices_settled(tenant_id=tenant_id, paid=paid, customer_ids=sorted(paid_customers, key=str), at=at)
    return paid


def _currency_of(holders: Sequence[Customer], customer_id: Any) -> str:
    return next(c.currency for c in holders if c.pk == customer_id)


def _charge_automatically(*, tenant_id: Any, invoices: Sequence[Invoice]) -> None:
    """Queue the first charge of the invoices still due whose customers are charged automatically
    (one query; the charge runs once the finalization commits)."""
    ids = list(
        Invoice.objects.filter(
            pk__in=[x.pk for x in invoices], customer__collection=Collection.CHARGE_AUTOMATICALLY, amount_due__gt=0
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if ids:
        from payments.charging import invoices_charge_enqueue

        invoices_charge_enqueue(ids, tenant_id=tenant_id, trigger="finalize")


@receiver(credit_note_finalized, dispatch_uid="payments.credit_note_finalized")
def on_credit_note_finalized(sender: Any, *, note: Invoice, invoice: Invoice, at: datetime, **kwargs: Any) -> None:
    credit_note_settle(note=note, invoice=invoice, at=at)


def credit_note_settle(*, note: Invoice, invoice: Invoice, at: datetime) -> None:
    """The credited invoice settled again. Credit beyond what it still owed (it was paid, in full or
    in part) goes back: to the balance, or refunded on its payments newest first, per the tenant's
    ``credit_destination``.

    Paid 120.00 of 120.00, credited 50.00: 0.00 was due, so 50.00 goes back and amount_paid becomes
    120.00 − 50.00 = 70.00; amount_due = max(0, 120.00 − 50.00 − 70.00) = 0.00."""
    # Locked in the ledger's order (the customer, then the invoice): already held by a caller that
    # finalizes the note in its transaction, and read again as committed.
    Customer.objects.select_for_update().only("id").get(pk=invoice.customer_id)
    invoice = Invoice.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=invoice.pk)
    currency = invoice.currency
    credited_before = (
        Invoice.objects.filter(credited_invoice=invoice, status__in=("finalized", "paid"))
        .exclude(pk=note.pk)
        .aggregate(s=Sum("total"))["s"]
        or 0
    )
    paid = invoice.amount_paid.amount
    due_before = max(Decimal(0), invoice.total.amount - Decimal(credited_before) - paid)
    excess = min(max(Decimal(0), note.total.amount - due_before), max(Decimal(0), paid))
    if excess > 0:
        if credit_destination(invoice.tenant_id) == CreditDestination.REFUND:
            excess = _credit_refunded(note=note, invoice=invoice, excess=excess, at=at)
        if excess > 0:
            _credit_to_balance(note=note, invoice=invoice, excess=excess, currency=currency)
    paid_now = invoices_settle([invoice.pk], at=at)
    # Only an invoice the credit clears can end an overdue state: nothing to reactivate otherwise.
    cleared = [invoice.customer_id] if paid_now else []
    invoices_settled(tenant_id=invoice.tenant_id, paid=paid_now, customer_ids=cleared, at=at)


def _credit_refunded(*, note: Invoice, invoice: Invoice, excess: Decimal, at: datetime) -> Decimal:
    """Refund the credit beyond what was due on the invoice's payments, newest first; returns what
    is left (money the balance had paid it with goes back to the balance)."""
    from payments.refunds import payment_refund

    left = excess
    for _, payment_id, net in payment_invoice_shares(invoice_id=invoice.pk):
        if left == 0:
            break
        payment = Payment.objects.get(pk=payment_id)
        holds = payment.amount.amount - payment.amount_refunded.amount
        take = min(left, net, holds)
        if take <= 0:
            continue
        payment_refund(
            payment=payment,
            amount=Money(take, invoice.currency),
            reason="Credit note %s" % note.number,
            actor=SYSTEM,
            at=at,
            invoice=invoice,
        )
        left -= take
    return left


def _credit_to_balance(*, note: Invoice, invoice: Invoice, excess: Decimal, currency: str) -> None:
    """The credit beyond what was due, taken off the invoice's payments (newest first, then what
    the balance paid) and put on the customer's balance, attributed to the payments it came from
    so that refunding them later takes it from the balance."""
    left = excess
    pieces: list[tuple[Any, Decimal]] = []
    for _, payment_id, net in payment_invoice_shares(invoice_id=invoice.pk):
        take = min(left, net)
        if take > 0:
            pieces.append((payment_id, take))
            left -= take
        if left == 0:
            break
    if left > 0:
        pieces.append((None, left))
    for payment_id, amount in pieces:
        movement = customer_balance_move(
            customer_id=invoice.customer_id,
            tenant_id=invoice.tenant_id,
            currency=currency,
            amount=amount,
            kind=BalanceKind.CREDIT_NOTE,
            payment=Payment(pk=payment_id) if payment_id else None,
            invoice=invoice,
            description="Credit note %s on %s" % (note.number, invoice.number),
        )
        PaymentAllocation.objects.create(
            tenant_id=invoice.tenant_id,
            invoice=invoice,
            source=AllocationSource.CREDIT_NOTE,
            payment_id=payment_id,
            credit_note=note,
            balance_transaction=movement,
            currency=currency,
            amount=-amount,
        )


@receiver(invoice_voided, dispatch_uid="payments.invoice_voided")
def on_invoice_voided(sender: Any, *, invoice: Invoice, at: datetime, **kwargs: Any) -> None:
    invoice_void_settle(invoice=invoice, at=at)


def invoice_void_settle(*, invoice: Invoice, at: datetime) -> None:
    """A voided invoice owes nothing: what was paid on it moves to the customer's balance (per
    payment, so a later refund of the payment finds it there), and its amount paid becomes 0."""
    rows = (
        PaymentAllocation.objects.filter(invoice=invoice)
        .order_by()
        .values("payment_id")
        .annotate(net=Sum("amount"))
        .order_by("payment_id")
    )
    moved = False
    for row in rows:
        net = row["net"]
        if net <= 0:
            continue
        payment_id = row["payment_id"]
        movement = customer_balance_move(
            customer_id=invoice.customer_id,
            tenant_id=invoice.tenant_id,
            currency=invoice.currency,
            amount=net,
            kind=BalanceKind.OVERPAYMENT if payment_id else BalanceKind.ADJUSTMENT,
            payment=Payment(pk=payment_id) if payment_id else None,
            invoice=invoice,
            description="Voided invoice %s" % invoice.number,
        )
        PaymentAllocation.objects.create(
            tenant_id=invoice.tenant_id,
            invoice=invoice,
            source=AllocationSource.PAYMENT if payment_id else AllocationSource.BALANCE,
            payment_id=payment_id,
            balance_transaction=movement,
            currency=invoice.currency,
            amount=-net,
        )
        moved = True
    if moved:
        Invoice.objects.filter(pk=invoice.pk).update(amount_paid=0)
