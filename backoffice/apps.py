from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    name = "backoffice"
    verbose_name = "Back-office"

    def ready(self) -> None:
        # The receivers that log failed logins and lockouts, and audit second factors and passwords.
        from backoffice import auth, security  # noqa: F401
