"""request_json.decode: every spelling of a number past a double's range is refused, not only 1e400
(an exponent of 308 with a mantissa over 1.79, a long mantissa with a small exponent)."""

from __future__ import annotations

import pytest

from gateway.web.request_json import BadJson, decode


@pytest.mark.parametrize(
    "number",
    [
        "1e400",
        "-1e400",
        "2E308",  # 2 x 10^308 > the largest double (~1.798 x 10^308)
        "1E+309",
        "1e0400",
        "1" + "0" * 300 + ".5",  # 10^300 with no exponent: finite; x 10^10 below is not
        "1" + "0" * 300 + "e10",
        "1" + "0" * 210 + ".0e99",
    ],
)
def test_a_number_past_a_double_is_refused(number: str) -> None:
    text = '{"variables": {"x": ' + number + "}}"
    if float(number) != float("inf") and float(number) != float("-inf"):
        assert decode(text)["variables"]["x"] == float(number)
        return
    with pytest.raises(BadJson, match="out of a double's range"):
        decode(text)
