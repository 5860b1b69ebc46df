"""The pure rating engine: charge models, the pooled allowance, hardware instalments, and one rounding step.

No database and no Django models here: each model turns an aggregated quantity into an unrounded
amount; ``price`` clamps and rounds it once. See specs/pricing.md, "Charge models".
"""

from .allowance import apply_allowance
from .base import ChargeModel, Rated, Usage
from .instalments import instalment_amounts
from .matrix import UnpricedMatrixGroup
from .pricing import Priced, price
from .registry import CHARGE_MODELS, rate_charge, validate_charge

__all__ = [
    "CHARGE_MODELS",
    "ChargeModel",
    "Priced",
    "Rated",
    "UnpricedMatrixGroup",
    "Usage",
    "apply_allowance",
    "instalment_amounts",
    "price",
    "rate_charge",
    "validate_charge",
]
