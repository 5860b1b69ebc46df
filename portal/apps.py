from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The customer portal (``/portal/``): views and templates only, calling the apps' services."""

    name = "portal"
    label = "portal"
