"""Revenue recognition's domain errors with stable codes (problem+json through billing_platform.errors)."""

from billing_platform.errors import Conflict, InvalidInput, NotFound


class NoStandaloneSellingPrice(InvalidInput):
    """A contract line whose product has no SSP in the contract's currency: allocation needs one
    per line, and Tripod never guesses it."""

    code = "no_standalone_selling_price"


class NoCommittedTerm(InvalidInput):
    """A plan without a commitment: its recurring fees are no fixed consideration to allocate."""

    code = "no_committed_term"


class DevicesNotShipped(Conflict):
    """A subscription ordered in the shop with slots still waiting for their device: its contract
    names each device's obligations, so it is made once every slot has its device."""

    code = "devices_not_shipped"


class PeriodClosed(Conflict):
    """A closed revenue period is never changed: corrections post in the open period."""

    code = "revenue_period_closed"


class RevenueContractNotFound(NotFound):
    """A subscription whose contract is not built yet: nothing is allocated to report on."""

    code = "revenue_contract_not_found"


class PeriodNotEnded(InvalidInput):
    """A month that has not started cannot be run, and one that has not ended cannot be closed."""

    code = "revenue_period_not_ended"


class RunInProgress(Conflict):
    """One recognition run at a time per tenant and period."""

    code = "recognition_run_in_progress"


class RecognitionRunNotFound(NotFound):
    code = "recognition_run_not_found"


class PeriodNotFound(NotFound):
    """A month no recognition run and no journal entry ever touched: nothing to close."""

    code = "revenue_period_not_found"


class PeriodNotRecognized(Conflict):
    """A month is closed only once its latest recognition run has succeeded."""

    code = "revenue_period_not_recognized"


class EarlierPeriodOpen(Conflict):
    """Months close in order: an earlier month with journal entries must be closed first."""

    code = "earlier_revenue_period_open"


class ExportTargetNotFound(NotFound):
    code = "export_target_not_found"


class ExportTargetNameTaken(Conflict):
    code = "export_target_name_taken"


class JournalExportNotFound(NotFound):
    code = "journal_export_not_found"
