from billing_platform.errors import Conflict, InvalidInput, NotFound


class InvoiceNotFound(NotFound):
    code = "invoice_not_found"


class BillRunNotFound(NotFound):
    code = "bill_run_not_found"


class BillingDateNotArrived(InvalidInput):
    code = "billing_date_not_arrived"


class InvalidInvoiceTransition(Conflict):
    code = "invalid_invoice_transition"


class InvoicePaymentInProgress(Conflict):
    """A payment attempt of the invoice is open (sent to the gateway, or about to be): voiding it
    then could leave money taken on a void invoice."""

    code = "payment_in_progress"


class InvalidCreditNote(InvalidInput):
    code = "invalid_credit_note"


class DocumentNotReady(Conflict):
    code = "document_not_ready"


class EinvoiceIncomplete(InvalidInput):
    """Finalizing would issue a document that is not a valid EN 16931 e-invoice: ``errors`` names
    each missing field (``seller.vat_number``, ``buyer.address_line1``...)."""

    code = "einvoice_incomplete"


class FacturxNotAvailable(Conflict):
    """The document has no Factur-X XML: a currency with three decimals, or a seller outside the EU
    that did not turn it on. Its PDF is the document."""

    code = "facturx_not_available"
