from billing_platform.errors import Conflict, DomainError, InvalidInput, NotFound


class CustomerNotFound(NotFound):
    code = "customer_not_found"


class CustomerExternalIdTaken(Conflict):
    code = "customer_external_id_taken"


class CustomerCurrencyLocked(Conflict):
    """A customer's currency changes only while nothing is owed either way: its credit balance and
    its open invoices are in the current one."""

    code = "customer_currency_locked"


class InvalidTaxId(InvalidInput):
    code = "invalid_tax_id"


class CustomerCountryConflict(DomainError):
    """``country`` and ``address.country`` name two countries: the request says two things."""

    code = "country_conflict"
