"""What payments announces to the layers above it (revrec journals the money), sent inside the
ledger's transaction (``payments.ledger``): a receiver's writes commit or roll back with it."""

from django.dispatch import Signal

# payment: a succeeded payment just recorded (allocated, the rest on the balance); at: when.
payment_recorded = Signal()
# refund: a refund just recorded; payment: the payment it gives money back from; at: when.
refund_recorded = Signal()
