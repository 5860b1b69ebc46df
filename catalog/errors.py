from billing_platform.errors import Conflict, InvalidInput, NotFound


class ProductNotFound(NotFound):
    code = "product_not_found"


class MeterNotFound(NotFound):
    code = "meter_not_found"


class PlanNotFound(NotFound):
    code = "plan_not_found"


class CodeTaken(Conflict):
    code = "code_taken"


class PriceVersionExists(Conflict):
    code = "price_version_exists"


class PriceOverrideExists(Conflict):
    code = "price_override_exists"


class NoPriceForCurrency(InvalidInput):
    """No price version of the plan in the customer's currency: a clear error at sale or quote time,
    never a silent currency conversion."""

    code = "no_price_for_currency"


class MissingTaxRate(InvalidInput):
    code = "missing_tax_rate"


class TaxRatePeriodOverlap(Conflict):
    """A tax rate's period that shares days with another period of the same country and category."""

    code = "tax_rate_period_overlap"
