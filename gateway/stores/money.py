"""Money as every adapter reports it: a sum of stored amounts, rounded to cents once, as its last step.

Conversion values are binary floats, and most decimal amounts (0.1, 1.1) have no exact one, so their
sum carries noise in its last digits (0.1 + 1.1 = 1.2000000000000002; a month's revenue
4003.7700000000004) that also depends on the order the store happened to add them in. Amounts are in
currency units with at most 2 decimals (whole cents), so rounding the sum to 2 decimals gives back the
exact figure, and both adapters agree to the digit. Round sums only, never the amounts before adding
them (that would round twice).
"""

from __future__ import annotations


def cents(amount: float) -> float:
    """``amount`` to 2 decimals: the float nearest the amount in whole cents (1.2000000000000002 -> 1.2)."""
    return round(float(amount), 2)
