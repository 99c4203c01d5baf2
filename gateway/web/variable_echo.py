"""A variable's refused value, echoed in graphql-js's words: ``{ device: true }``, ``[1, "a", null]``,
``"it's"``, never Python's ``{'device': True}``, ``[1, 'a', None]``, ``"it's"`` / ``'a'``.

graphql-core writes a variable's value into its coercion messages (``Variable '$f' has invalid value at
.sex: Enum 'Sex' cannot represent non-string value: True.``, ``... found: {'devise': None}.``) with
:func:`graphql.pyutils.inspect`, which is Python's repr by design. Every client of the gateway (GraphiQL,
Apollo, graphql-js) sent that value as JSON and reads graphql-js's :file:`jsutils/inspect.js` rendering
of it. A literal in the document is not concerned: graphql-core prints it back as GraphQL
(``print_for_error``), as graphql-js does.

graphql-core offers no hook for this: ``inspect`` is imported by name into every module that words a
message (the built-in scalars, enums, input validation), and ``__inspect__`` only works for values of
our own classes (a JSON ``true`` or ``null`` is Python's, so it cannot carry one). Patching graphql-core
would change its messages for every caller in the process. So the message is mended where the error
policy already reads graphql-core's wording (:class:`gateway.web.errors.ErrorPolicy`): a variable's
message names the variable and the path into its value; the value there is the one graphql-core
inspected, so its ``inspect`` text is known exactly and is replaced by graphql-js's rendering of the
same value. A message without that text (a scalar's own words, a missing field) is left as it is.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

from graphql.pyutils import Undefined, inspect
from graphql.pyutils.inspect import trunc_str

# graphql-js's jsutils/inspect.js limits.
MAX_ARRAY_LENGTH = 10
MAX_RECURSIVE_DEPTH = 2
# Ours: an object's entries stop past this many characters. graphql-js prints them all, but a message is
# cut to 1,000 characters (errors.MAX_MESSAGE_CHARS) and each of up to 50 errors echoes the value: all of
# 60,000 keys, 50 times, held the event loop 5 s (review).
MAX_OBJECT_CHARS = 1_000

# graphql-core's execution/values.py: f"Variable '${name}' has invalid value{print_path_list(path)}: "
# where a path is " at " then ".field" (an input field's name, a GraphQL name) and "[index]" parts.
_VARIABLE_VALUE = re.compile(
    r"Variable '\$(?P<name>\w+)' has invalid value(?: at (?P<path>(?:\.\w+|\[\d+\])+))?: "
)
_PATH_PART = re.compile(r"\.(\w+)|\[(\d+)\]")
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")


def js_inspect(value: Any) -> str:
    """``value`` as graphql-js's ``inspect`` prints a JSON value in an error message: strings as JSON,
    ``null``, ``true``, numbers as JavaScript writes them, objects as ``{ key: value }`` with the keys
    bare, lists of more than ten items as the first ten and ``... N more items``, and below two levels
    ``[Object]`` / ``[Array]``. One difference: a string is cut to graphql-core's 240 characters (as its
    own ``inspect`` does), so a message stays as short as it was."""
    return _format(value, 0)


def _format(value: Any, seen: int) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return trunc_str(json.dumps(value, ensure_ascii=False))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        if seen + 1 > MAX_RECURSIVE_DEPTH:  # seen + 1: graphql-js's seenValues.length, itself included
            return "[Array]"
        items = [_format(item, seen + 1) for item in value[:MAX_ARRAY_LENGTH]]
        remaining = len(value) - MAX_ARRAY_LENGTH
        if remaining == 1:
            items.append("... 1 more item")
        elif remaining > 1:
            items.append(f"... {remaining} more items")
        return "[" + ", ".join(items) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        if seen + 1 > MAX_RECURSIVE_DEPTH:
            return "[Object]"
        entries: list[str] = []
        length = 0
        for key in _js_key_order(value):
            if length > MAX_OBJECT_CHARS:  # graphql-js prints every entry; the message is cut anyway
                entries.append("...")
                break
            entries.append(f"{key}: {_format(value[key], seen + 1)}")
            length += len(entries[-1]) + 2
        return "{ " + ", ".join(entries) + " }"
    return inspect(value)  # nothing JSON decodes to: graphql-core's own words


def _js_key_order(value: dict[Any, Any]) -> list[Any]:
    """The keys in JavaScript's order (``Object.entries``): array-index keys (\"0\", \"17\") first, in
    numeric order, then the others in the order they came."""
    indices = [k for k in value if isinstance(k, str) and _ARRAY_INDEX.fullmatch(k) and int(k) < 2**32 - 1]
    if not indices:
        return list(value)
    chosen = set(indices)
    return sorted(indices, key=int) + [k for k in value if k not in chosen]


def _js_number(value: float) -> str:
    """JavaScript's ``Number.prototype.toString``: the shortest digits that read back (Python's repr
    finds the same), in plain notation from 1e-7 up to 1e21 and ``5`` for 5.0."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"  # -0 too, as String(-0)
    sign, digits_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digits_tuple))
    k = len(digits)
    n = k + exponent  # the decimal point sits after the n-th digit
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        power = n - 1
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if power >= 0 else '-'}{abs(power)}"
    return ("-" if sign else "") + text


def _value_at(variables: dict[str, Any], name: str, path: str | None) -> Any:
    value = variables.get(name, Undefined)
    for field, index in _PATH_PART.findall(path or ""):
        if field:
            value = value.get(field, Undefined) if isinstance(value, dict) else Undefined
        elif isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            value = Undefined
    return value


def variable_message(message: str, variables: dict[str, Any] | None) -> str:
    """graphql-core's message about a variable's refused value, with that value in graphql-js's words
    (:func:`js_inspect`) where graphql-core wrote Python's; any other message as it is."""
    match = _VARIABLE_VALUE.match(message)
    if match is None or not variables:
        return message
    value = _value_at(variables, match["name"], match["path"])
    if value is Undefined:
        return message
    python, javascript = f": {inspect(value)}", f": {js_inspect(value)}"
    if python == javascript:
        return message
    # The value is the last thing graphql-core writes after a colon ("found: ...", "non-integer value:
    # ...", an enum's then followed by its suggestions, which hold no colon).
    at = message.rfind(python, match.end())
    if at < 0:
        return message
    return message[:at] + javascript + message[at + len(python) :]


__all__ = ["js_inspect", "variable_message"]
