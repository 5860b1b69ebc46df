"""Credit notes: a finalized or paid invoice credited in full or for some lines and amounts. A
credit note is an invoice of kind ``credit_note``, written like any invoice (``invoice_lines_write``),
taxed at the credited invoice's rates (``taxes_for``) and numbered in its own series."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from djmoney.money import Money

from billing_platform.errors import FieldError
from billing_platform.money import round_minor
from billing_platform.periods import Period, local_date
from catalog.taxes import LineTax, Taxable, taxes_for
from catalog.vat import rated_vat_category
from customers.models import Customer
from invoicing.einvoice import einvoice_check
from invoicing.errors import InvalidCreditNote
from invoicing.lines import DraftLine, LineType
from invoicing.models import Invoice, InvoiceKind, InvoiceLine
from invoicing.selectors import invoice_credit_balance
from invoicing.services.generation import invoice_lines_write, invoice_taxes_write
from invoicing.services.lifecycle import invoice_action_check, invoice_finalize, reason_check
from tenancy.actors import Actor


def credit_note_create(
    *, invoice: Invoice, actor: Actor, at: datetime, lines: Sequence[dict[str, Any]] | None = None, reason: str = ""
) -> Invoice:
    """A credit note for a finalized invoice: in full (``lines`` None) or for some lines and amounts
    (``[{"line": id, "amount": "10.00"}]``), never more than what is left to credit on a line."""
    reason_check(reason)
    with transaction.atomic():
        # The customer, then the invoice (the ledger's lock order): both stay locked until the note
        # is finalized and settled on the invoice, so a payment arriving meanwhile waits for it.
        Customer.objects.select_for_update().only("id").get(pk=invoice.customer_id)
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        invoice_action_check(invoice, "credit")
        wanted = _credited_lines(invoice, lines)
        credited = [
            DraftLine(
                type=LineType(line.type),
                product_code=line.product,
                product_name=line.description,
                qualifiers=line.qualifiers,
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                amount=amount,
                tax_category=line.tax_category,
                vat_category=line.vat_category or rated_vat_category(line.tax_category),
                subscription=line.subscription,
                period=Period(line.period_start, line.period_end)
                if line.period_start is not None and line.period_end is not None
                else None,
                devices=tuple(line.devices),
                detail={"credited_line": line.pk},
            )
            for line, amount in wanted
        ]
        # A credit note is finalized at once: refused before anything is written when it would not
        # be a valid e-invoice (the seller's identity may have changed since the invoice).
        einvoice_check(
            tenant=invoice.tenant, customer=invoice.customer, vat_categories={x.vat_category for x in credited}
        )
        # The credited invoice's taxes, not today's rates nor today's decision: the note gives back
        # the tax that was charged, under the same category and mention. A line whose category has
        # no tax row on the invoice was taxed at nothing.
        charged = {(t.category, t.vat_category or rated_vat_category(t.category)): t for t in invoice.taxes.all()}

        def line_tax(line: Taxable) -> LineTax:
            code = getattr(line, "vat_category", "") or rated_vat_category(line.tax_category)
            tax = charged.get((line.tax_category, code))
            if tax is None:
                return LineTax(code, Decimal(0))
            return LineTax(code, tax.rate, tax.exemption_reason_code, tax.exemption_reason)

        taxes, _ = taxes_for(
            lines=credited, line_tax=line_tax, currency=invoice.currency, country=invoice.customer.country
        )
        net = Money(sum((x.signed_amount for x in credited), Decimal(0)), invoice.currency)
        tax = Money(sum((t.amount for t in taxes), Decimal(0)), invoice.currency)
        note = Invoice.objects.create(
            tenant=invoice.tenant,
            customer=invoice.customer,
            kind=InvoiceKind.CREDIT_NOTE,
            # Dated in the seller's time zone, as invoices are dated on their local billing date: a
            # Paris note made at 00:30 on 1 January (23:30 UTC) is in the new year's number series.
            issue_date=local_date(at, invoice.tenant.timezone),
            currency=invoice.currency,
            language=invoice.language,
            credited_invoice=invoice,
            reason=reason,
            net_total=net,
            tax_total=tax,
            total=net + tax,
        )
        invoice_lines_write({note: credited})
        invoice_taxes_write({note: taxes})
        invoice.amount_due = max(invoice.amount_due - note.total, Money(0, invoice.currency))
        invoice.save(update_fields=["amount_due"])
        return invoice_finalize(invoice=note, actor=actor, at=at)


def credit_note_lines_check(*, invoice: Invoice, lines: Sequence[dict[str, Any]] | None) -> None:
    """What ``credit_note_create`` would refuse in the invoice and ``lines``, checked without writing
    anything (and without the locks it takes): ``InvalidCreditNote`` with an error per line. The
    back-office reports these beside an error of the reason in one pass."""
    invoice_action_check(invoice, "credit")
    _credited_lines(invoice, lines)


def _credited_lines(invoice: Invoice, lines: Sequence[dict[str, Any]] | None) -> list[tuple[InvoiceLine, Decimal]]:
    """The invoice's lines to credit and the amount of each: what is left on every line (``lines``
    None), or the lines and amounts asked for, each between 0.01 and what is left on it."""
    invoice_lines = {line.pk: line for line in invoice.lines.select_related("subscription")}
    credited = invoice_credit_balance(invoice)
    wanted: list[tuple[InvoiceLine, Decimal]] = []
    errors: list[FieldError] = []
    if lines is None:
        wanted = [(line, line.amount - credited.get(line.pk, Decimal(0))) for line in invoice_lines.values()]
        wanted = [(line, amount) for line, amount in wanted if amount != 0]
    else:
        for i, item in enumerate(lines):
            line = invoice_lines.get(item.get("line"))  # type: ignore[arg-type]
            if line is None:
                errors.append(FieldError(f"lines[{i}].line", "unknown_line", "Not a line of this invoice."))
                continue
            try:
                amount = round_minor(Decimal(str(item.get("amount", line.amount))), invoice.currency)
            except Exception:
                errors.append(FieldError(f"lines[{i}].amount", "invalid", "A decimal amount."))
                continue
            left = line.amount - credited.get(line.pk, Decimal(0))
            if amount <= 0 or amount > left:
                errors.append(
                    FieldError(
                        f"lines[{i}].amount",
                        "out_of_range",
                        "Between 0.01 and %s." % round_minor(left, invoice.currency),
                    )
                )
                continue
            wanted.append((line, amount))
    if errors or not wanted:
        raise InvalidCreditNote("Nothing left to credit." if not errors else errors[0].message, errors=errors)
    return wanted
