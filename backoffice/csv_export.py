"""The back-office's CSV downloads use the generic helper of ``billing_platform.csv_export``, which
the customer portal shares."""

from billing_platform.csv_export import FORMULA_STARTS, csv_cell, csv_lines, csv_response

__all__ = ["FORMULA_STARTS", "csv_cell", "csv_lines", "csv_response"]
