"""Revenue recognition's domain errors with stable codes (problem+json through billing_platform.errors)."""

from billing_platform.errors import Conflict, InvalidInput, NotFound


class NoStandaloneSellingPrice(InvalidInput):
    """A contract line whose product has no SSP in the contract's currency: allocation needs one
    per line, and Tripod never guesses it."""

    code = "no_standalone_selling_price"


class NoCommittedTerm(InvalidInput):
    """A plan without a commitment: its recurring fees are no fixed consideration to allocate."""

    code = "no_committed_term"


class PeriodClosed(Conflict):
    """A closed revenue period is never changed: corrections post in the open period."""

    code = "revenue_period_closed"


class RevenueContractNotFound(NotFound):
    """A subscription whose contract is not built yet: nothing is allocated to report on."""

    code = "revenue_contract_not_found"
