"""What invoicing announces to the layers above it (payments settles, later revrec recognizes),
sent inside the change's transaction: a receiver's writes commit or roll back with it."""

from django.dispatch import Signal

# invoices: the invoices (kind "invoice") just finalized, in their transaction; at: when.
invoices_finalized = Signal()
# note: the credit note just finalized; invoice: the invoice it credits (locked); at: when.
credit_note_finalized = Signal()
# invoice: a finalized invoice just voided (locked); at: when.
invoice_voided = Signal()
