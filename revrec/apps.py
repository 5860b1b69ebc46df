from django.apps import AppConfig


class RevrecConfig(AppConfig):
    name = "revrec"
    verbose_name = "Revenue recognition"

    def ready(self) -> None:
        # Invoicing announces finalized invoices, credit notes and voids, payments the money
        # received and refunded: revrec journals them in the same transaction (the layer above
        # listens, the layers below know nothing of it). A recognition run left by a dead worker is
        # taken up again by the jobs watchdog.
        from billing_platform.jobs import Job, job_register
        from revrec import receivers  # noqa: F401
        from revrec.periods import recognition_run_resume

        job_register(
            Job(
                key="recognition_run",
                model="revrec.RecognitionRun",
                active=("queued", "running"),
                resume=recognition_run_resume,
                queue="billing",
            )
        )
