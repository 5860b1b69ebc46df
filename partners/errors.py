from billing_platform.errors import Conflict, NotFound


class PartnerCodeTaken(Conflict):
    code = "partner_code_taken"


class PartnerUserNotFound(NotFound):
    code = "partner_user_not_found"


class PartnerUserEmailTaken(Conflict):
    """One address is one partner user per tenant: it logs in on the tenant's partner page and lands
    in one partner's dashboard."""

    code = "partner_user_email_taken"


class StatementNotFound(NotFound):
    code = "partner_statement_not_found"


class StatementNotEditable(Conflict):
    """An approved statement never changes; corrections go to the next month's."""

    code = "partner_statement_not_editable"


class PartnerUserSelfChange(Conflict):
    """A partner admin cannot demote, deactivate or remove themselves: the partner would lose the
    one person who can undo it."""

    code = "partner_user_self_change"
