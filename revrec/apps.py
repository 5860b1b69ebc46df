from django.apps import AppConfig


class RevrecConfig(AppConfig):
    name = "revrec"
    verbose_name = "Revenue recognition"

    def ready(self) -> None:
        # Invoicing announces finalized invoices, credit notes and voids, payments the money
        # received and refunded: revrec journals them in the same transaction (the layer above
        # listens, the layers below know nothing of it).
        from revrec import receivers  # noqa: F401
