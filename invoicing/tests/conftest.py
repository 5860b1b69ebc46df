"""Invoicing tests read usage as the bill run does: the usage tests' fleet and partition fixtures."""

from usage.tests.conftest import fleet, fresh_partitions

__all__ = ["fleet", "fresh_partitions"]
