from django.apps import AppConfig
from django.db.backends.signals import connection_created


class BillingPlatformConfig(AppConfig):
    name = "billing_platform"
    verbose_name = "Billing platform"

    def ready(self) -> None:
        from billing_platform import checks, generations, rls  # noqa: F401 - checks registers the system check

        connection_created.connect(rls.connection_created, dispatch_uid="tripod_rls_connection_created")
        # Every write to a projection's input bumps its generation (cached current usage).
        connection_created.connect(generations.watch_writes, dispatch_uid="tripod_generations_watch_writes")
