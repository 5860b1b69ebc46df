from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments, collection and dunning"

    def ready(self) -> None:
        # Invoicing announces finalized invoices and credit notes; payments settles them (balance
        # applied, first charge, credit beyond what is due returned): the layer above listens.
        from payments import receivers  # noqa: F401
