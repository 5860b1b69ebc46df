"""What an invoice allows next, from its own row: the transitions of its status, as data (Oscar's
status pipeline), and the actions they give. The lifecycle services and ``credit_note_create``
check these before they write; a page shows only the actions allowed."""

from collections.abc import Mapping

from invoicing.models import Invoice, InvoiceKind, InvoiceStatus

ST = InvoiceStatus

# The statuses each status may become. Paid and void are final: a finalized document is never
# edited, it is paid, voided or corrected by a credit note.
INVOICE_TRANSITIONS: Mapping[InvoiceStatus, frozenset[InvoiceStatus]] = {
    ST.DRAFT: frozenset({ST.FINALIZED, ST.VOID}),
    ST.FINALIZED: frozenset({ST.PAID, ST.VOID}),
    ST.PAID: frozenset(),
    ST.VOID: frozenset(),
}
# The action that moves a document to each status.
TRANSITION_ACTIONS: Mapping[InvoiceStatus, str] = {ST.FINALIZED: "finalize", ST.PAID: "pay", ST.VOID: "void"}
# A credit note corrects an invoice that was issued; a draft is changed or voided instead.
CREDITABLE = frozenset({ST.FINALIZED, ST.PAID})


def invoice_actions(invoice: Invoice) -> frozenset[str]:
    """What ``invoice`` allows: ``finalize``, ``pay`` and ``void`` as its status's transitions allow,
    and ``credit`` for an invoice (not a credit note) that was issued.

    Only the invoice's own row is read. The rules that need more are the services' to check: an
    invoice with credit notes cannot be voided, and only what is left on a line can be credited.
    """
    status = InvoiceStatus(invoice.status)
    actions = {TRANSITION_ACTIONS[to] for to in INVOICE_TRANSITIONS[status]}
    if invoice.kind == InvoiceKind.INVOICE and status in CREDITABLE:
        actions.add("credit")
    return frozenset(actions)
