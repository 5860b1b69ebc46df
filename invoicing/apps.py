from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "invoicing"
    verbose_name = "Invoicing"

    def ready(self) -> None:
        # A bill run left by a dead worker is taken up again by the jobs watchdog.
        from billing_platform.jobs import Job, job_register
        from invoicing.services.bill_runs import bill_run_resume

        job_register(
            Job(
                key="bill_run",
                model="invoicing.BillRun",
                active=("pending", "running"),
                resume=bill_run_resume,
                queue="billing",
            )
        )
