from billing_platform.errors import Conflict, InvalidInput, NotFound


class InvoiceNotFound(NotFound):
    code = "invoice_not_found"


class BillRunNotFound(NotFound):
    code = "bill_run_not_found"


class BillingDateNotArrived(InvalidInput):
    code = "billing_date_not_arrived"


class InvalidInvoiceTransition(Conflict):
    code = "invalid_invoice_transition"


class InvalidCreditNote(InvalidInput):
    code = "invalid_credit_note"


class DocumentNotReady(Conflict):
    code = "document_not_ready"
