"""Webhook tests post to a real receiver on 127.0.0.1, and run Celery tasks in process."""

from collections.abc import Iterator

import pytest

from billing_platform.celery import app as celery_app
from webhooks.tests.receiver import receiver

__all__ = ["receiver"]


@pytest.fixture
def eager_celery() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False
