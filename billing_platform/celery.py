import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_platform.settings")

# Every task runs in a row-level security scope, with no tenant unless it is a TenantTask.
app = Celery("tripod", task_cls="billing_platform.tasks:ScopedTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
