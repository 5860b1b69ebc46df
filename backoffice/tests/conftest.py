"""Fixtures of the back-office tests: allauth keeps its rate limits and the second-factor codes
already used in Django's cache, which outlives a test's transaction; every test starts empty."""

from collections.abc import Iterator

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()
