from django.apps import AppConfig


class BillingPlatformConfig(AppConfig):
    name = "billing_platform"
    verbose_name = "Billing platform"
