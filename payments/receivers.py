"""What payments does when invoicing announces a change (invoicing.signals)."""
