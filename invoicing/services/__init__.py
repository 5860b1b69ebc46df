"""Invoice writes, one module per concern: ``generation`` (the invoice of a billing date, and the
one writer of invoice lines), ``numbering`` (gapless numbers), ``lifecycle`` (finalize, void, and
finalizing a selection of drafts), ``credit_notes``, ``sending`` (e-mailing finalized documents
again), ``metadata`` (the tenant's own keys, editable at any status), ``bill_runs``
(chunked by customer across Celery workers) and ``settings``."""

from invoicing.services.bill_runs import (
    CHUNK_SIZE,
    BillRunChunk,
    bill_run_chunk,
    bill_run_create,
    bill_run_plan,
    bill_runs_start_due,
    customers_due,
)
from invoicing.services.credit_notes import credit_note_create, credit_note_lines_check
from invoicing.services.generation import invoice_generate, invoice_lines_write, invoice_taxes_write, invoices_write
from invoicing.services.lifecycle import (
    BULK_CHUNK,
    INVOICE_TRANSITIONS,
    DraftsFinalized,
    bill_run_drafts_finalize,
    invoice_finalize,
    invoice_void,
    invoices_drafts_finalize,
)
from invoicing.services.metadata import invoice_metadata_update
from invoicing.services.numbering import number_format, numbers_take
from invoicing.services.sending import SENDABLE, InvoicesSent, invoices_send
from invoicing.services.settings import INVOICING_SETTINGS_FIELDS, invoicing_settings_get, invoicing_settings_update

__all__ = [
    "BULK_CHUNK",
    "CHUNK_SIZE",
    "INVOICE_TRANSITIONS",
    "INVOICING_SETTINGS_FIELDS",
    "SENDABLE",
    "BillRunChunk",
    "DraftsFinalized",
    "InvoicesSent",
    "bill_run_drafts_finalize",
    "bill_run_chunk",
    "bill_run_create",
    "bill_run_plan",
    "bill_runs_start_due",
    "credit_note_create",
    "credit_note_lines_check",
    "customers_due",
    "invoice_finalize",
    "invoice_generate",
    "invoice_lines_write",
    "invoice_metadata_update",
    "invoice_taxes_write",
    "invoice_void",
    "invoices_drafts_finalize",
    "invoices_send",
    "invoices_write",
    "invoicing_settings_get",
    "invoicing_settings_update",
    "number_format",
    "numbers_take",
]
