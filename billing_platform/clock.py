"""The one place that reads the wall clock; services take ``at=`` instead (deterministic re-runs)."""

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
