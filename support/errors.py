from billing_platform.errors import Conflict, InvalidInput, NotFound


class SupportCaseNotFound(NotFound):
    code = "support_case_not_found"


class InvalidSupportCase(InvalidInput):
    code = "invalid_support_case"


class SupportCaseTransitionNotAllowed(Conflict):
    code = "support_case_transition_not_allowed"


class SupportCaseNoInvoice(Conflict):
    """A credit note is issued on the case's invoice: a case about no invoice has none to credit."""

    code = "support_case_no_invoice"
