from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    name = "backoffice"
    verbose_name = "Back-office"

    def ready(self) -> None:
        # The receivers that log failed logins and lockouts, and audit second factors and passwords.
        from backoffice import auth, security  # noqa: F401

        # An export left by a dead worker is written again by the jobs watchdog, once no task of it can
        # still be running.
        from backoffice.exports.services import data_export_resume
        from backoffice.tasks import EXPORT_TIME_LIMIT
        from billing_platform.jobs import Job, job_register

        job_register(
            Job(
                key="data_export",
                model="backoffice.DataExport",
                active=("queued", "running"),
                resume=data_export_resume,
                min_stalled_seconds=EXPORT_TIME_LIMIT + 60,
                queue="documents",
            )
        )
