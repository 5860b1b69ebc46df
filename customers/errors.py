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


class PortalUserNotFound(NotFound):
    code = "portal_user_not_found"


class PortalUserEmailTaken(Conflict):
    """One address is one portal user per tenant: it logs in on the tenant's portal page and lands
    in one customer's account."""

    code = "portal_user_email_taken"


class PortalUserSelfChange(Conflict):
    """A portal admin cannot demote, deactivate or remove themselves: the customer would lose the
    one person who can undo it."""

    code = "portal_user_self_change"


class PortalLoginRefused(DomainError):
    """A portal login step that did not let the person in. ``reason`` is for the audit log only: the
    page says the same thing whatever it is, so that nobody learns which addresses have an account."""

    status = 403
    code = "portal_login_refused"
    title = "Login refused"

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail, extra={"reason": reason})
        self.reason = reason


class PartnerNotFound(NotFound):
    code = "partner_not_found"
