"""A variable's refused value is echoed as graphql-js prints it (jsutils/inspect.js): JSON strings,
``null``, ``true``, ``{ key: value }`` with bare keys; never Python's ``'a'``, ``None``, ``True``.

graphql-core words these messages with Python's repr. Every expected message below keeps graphql-core's
wording (single-quoted names, as every other message of the gateway) and writes the value by hand as
graphql-js's ``inspect`` does: ``formatValue`` gives a string ``JSON.stringify(value)``, null ``'null'``,
a boolean or number ``String(value)``; ``formatObject`` gives ``'{ ' + 'key: ' + value (joined ', ') +
' }'``; ``formatArray`` gives ``'[' + items (joined ', ') + ']'``, at most ten items then ``... N more
items``; below two levels an object is ``[Object]``, a list ``[Array]``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.web import pages
from gateway.web.app import create_app
from gateway.web.variable_echo import js_inspect, variable_message
from tests.api.conftest import run

FILTER = "query($f: FunnelFilter) { funnel(filter: $f) { overallConversionRate } }"
STEPS = "query($s: [String!]) { funnel(steps: $s) { overallConversionRate } }"
BREAKDOWN = "query($b: Breakdown) { funnel(breakdown: $b) { overallConversionRate } }"
WINDOW = "query($n: Int) { funnel(conversionWindowSeconds: $n) { overallConversionRate } }"
TRACK = "mutation($e: [EventInput!]!) { trackEvents(events: $e) { accepted } }"

# (query, variables, [(message, code)]): graphql-core said {'devise': None, 'sex': True, ...},
# [1, 'a', None, True], 'it\'s "ten"', True, 1e-07.
CASES: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "an object with null, true and strings": (
        FILTER,
        {"f": {"devise": None, "sex": True, "start": "2015-01-19"}},
        [
            "Variable '$f' has invalid value at .sex: Enum 'Sex' cannot represent non-string value: true.",
            "Variable '$f' has invalid value: Expected value of type 'FunnelFilter' not to include unknown "
            "field 'devise'. Did you mean 'device'? Found: { devise: null, sex: true, start: \"2015-01-19\" }.",
        ],
    ),
    "a nested object where a number belongs": (
        TRACK,
        {
            "e": [
                {
                    "pageType": "home",
                    "coordinates": {"x": 1, "y": {"deep": None, "flag": True, "name": 'a "b"'}},
                }
            ]
        },
        [
            "Variable '$e' has invalid value at [0].coordinates.y: Int cannot represent non-integer value: "
            '{ deep: null, flag: true, name: "a \\"b\\"" }'
        ],
    ),
    "a list where an object belongs": (
        FILTER,
        {"f": [1, "a", None, True, 2.5]},
        [
            "Variable '$f' has invalid value: Expected value of type 'FunnelFilter' to be an object, "
            'found: [1, "a", null, true, 2.5].'
        ],
    ),
    "a list of twelve where an object belongs": (
        FILTER,
        {"f": list(range(12))},
        [
            "Variable '$f' has invalid value: Expected value of type 'FunnelFilter' to be an object, "
            "found: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... 2 more items]."
        ],
    ),
    "an object in a list variable": (
        STEPS,
        {"s": ["home", {"a": None, "b": [True, "x"]}]},
        [
            "Variable '$s' has invalid value at [1]: String cannot represent a non string value: "
            '{ a: null, b: [true, "x"] }'
        ],
    ),
    "an enum value as a list of its name": (
        BREAKDOWN,
        {"b": ["DEVICE"]},
        [
            "Variable '$b' has invalid value: Enum 'Breakdown' cannot represent non-string value: "
            "[\"DEVICE\"]. Did you mean the enum value 'DEVICE'?"
        ],
    ),
    "a string with quotes where a number belongs": (
        WINDOW,
        {"n": 'it\'s "ten"'},
        ['Variable \'$n\' has invalid value: Int cannot represent non-integer value: "it\'s \\"ten\\""'],
    ),
    "true where a number belongs": (
        WINDOW,
        {"n": True},
        ["Variable '$n' has invalid value: Int cannot represent non-integer value: true"],
    ),
    "a small fraction": (
        WINDOW,
        {"n": 1e-7},
        ["Variable '$n' has invalid value: Int cannot represent non-integer value: 1e-7"],
    ),
}


def messages(result: dict[str, Any]) -> list[tuple[str, str]]:
    assert result["data"] is None
    return [(e["message"], e["extensions"]["code"]) for e in result["errors"]]


@pytest.mark.parametrize("case", CASES)
async def test_a_refused_variable_value_is_echoed_as_graphql_js_prints_it(services, case):
    query, variables, expected = CASES[case]
    got = messages(await run(services, query, variables))  # the `funnelgate query` path
    assert got == [(message, "BAD_USER_INPUT") for message in expected]


async def test_over_http_post_get_and_a_websocket_alike(services):
    query, variables, expected = CASES["an object with null, true and strings"]
    subscription = FILTER.replace("query", "subscription").replace("funnel(", "funnelUpdates(")
    want = [(message, "BAD_USER_INPUT") for message in expected]
    async with TestClient(TestServer(create_app(services, response_cache=False))) as http:
        post = await (await http.post("/graphql", json={"query": query, "variables": variables})).json()
        params = {"query": query, "variables": json.dumps(variables)}
        get = await (await http.get("/graphql", params=params)).json()
        ws = await http.ws_connect("/graphql", protocols=["graphql-transport-ws"])
        await ws.send_json({"type": "connection_init"})
        assert (await ws.receive_json(timeout=10))["type"] == "connection_ack"
        payload = {"query": subscription, "variables": variables}
        await ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
        answer = await ws.receive_json(timeout=20)
        await ws.close()
    assert messages(post) == want
    assert messages(get) == want
    assert answer["type"] in ("next", "error")
    errors = answer["payload"]["errors"] if answer["type"] == "next" else answer["payload"]
    assert [(e["message"], e["extensions"]["code"]) for e in errors] == want


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        # A literal is printed as GraphQL by graphql-core already (graphql-js's printForError):
        (
            '{ funnel(breakdown: "DEVICE") { overallConversionRate } }',
            None,
            (
                "Enum 'Breakdown' cannot represent non-enum value: \"DEVICE\". Did you mean the enum value 'DEVICE'?",
                "GRAPHQL_VALIDATION_FAILED",
            ),
        ),
        # graphql-core names an unknown enum value in quotes of its own, not with repr: left as it was.
        (
            BREAKDOWN,
            {"b": "device"},
            (
                "Variable '$b' has invalid value: Value 'device' does not exist in 'Breakdown' enum. "
                "Did you mean the enum value 'DEVICE'?",
                "BAD_USER_INPUT",
            ),
        ),
        # A value Python and JavaScript write alike.
        (
            WINDOW,
            {"n": 2**40},
            (
                "Variable '$n' has invalid value: Int cannot represent non 32-bit signed integer value: "
                "1099511627776",
                "BAD_USER_INPUT",
            ),
        ),
        # A scalar's own words (gateway.errors.shown) hold no repr.
        (
            FILTER,
            {"f": {"start": "it's"}},
            (
                "Variable '$f' has invalid value at .start: Date must be a calendar day as YYYY-MM-DD "
                '(e.g. 2015-01-19), got "it\'s"',
                "BAD_USER_INPUT",
            ),
        ),
    ],
    ids=["enum literal given as a string", "unknown enum name", "big int", "scalar's own message"],
)
async def test_messages_without_a_python_repr_are_left_alone(services, query, variables, expected):
    assert messages(await run(services, query, variables)) == [expected]


JS_TEXTS: list[tuple[Any, str]] = [
    (None, "null"),
    (False, "false"),
    ("", '""'),
    ("tab\there\n", '"tab\\there\\n"'),
    ("héllo", '"héllo"'),  # JSON.stringify keeps non-ASCII as it is
    (5.0, "5"),  # JSON 5.0 is the number 5 in JavaScript
    (-0.5, "-0.5"),
    (1e21, "1e+21"),
    (1e16, "10000000000000000"),
    (1.5e-7, "1.5e-7"),
    (0.000001, "0.000001"),
    ([], "[]"),
    ({}, "{}"),
    (list(range(11)), "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... 1 more item]"),
    ({"a": {"b": {"c": 1}}}, "{ a: { b: [Object] } }"),
    ([[[1]]], "[[[Array]]]"),
    ({"b": 1, "10": 2, "2": 3, "x y": 4}, "{ 2: 3, 10: 2, b: 1, x y: 4 }"),  # Object.entries' order
]


@pytest.mark.parametrize(("value", "text"), JS_TEXTS)
def test_js_inspect_writes_what_graphql_js_writes(value, text):
    assert js_inspect(value) == text


# Values a client may send, to compare with graphql-js's own inspect (run by node over the same JSON).
JSON_VALUES: list[Any] = [
    *[value for value, _ in JS_TEXTS],
    'quote " and \\ backslash',
    "\u0001 \u007f \u2028",
    -1e-7,
    123456789.125,
    1e300,
    {"nested": [{"a": [1, {"b": None}]}, [[]], {}], "0": "zero"},
    [{"x": [1, 2]}, [[{"y": 1}]]],
    list(range(25)),
    {"k" * 300: "v" * 100},
]


def test_js_inspect_agrees_with_graphql_js_itself():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    inspect_js = pages.STATIC_DIR / "node_modules" / "graphql" / "jsutils" / "inspect.js"
    script = (
        f"const {{ inspect }} = require({json.dumps(str(inspect_js))});"
        "const values = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(values.map((v) => inspect(v))));"
    )
    run_node = subprocess.run(
        [node, "-e", script],
        input=json.dumps(JSON_VALUES),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert [js_inspect(value) for value in JSON_VALUES] == json.loads(run_node.stdout)


def test_a_long_string_is_cut_as_graphql_core_cut_it():
    # graphql-js would echo all of it; graphql-core keeps 240 characters of the quoted text, its first
    # (240 - 3) // 2 = 118 and last 240 - 3 - 118 = 119, around "...": the message stays as short.
    assert js_inspect("x" * 300) == '"' + "x" * 117 + "..." + "x" * 118 + '"'


def test_a_message_not_about_a_variable_value_is_kept():
    text = "Expected value of type 'FunnelFilter' to be an object, found: [1, None]."
    assert variable_message(text, {"f": [1, None]}) == text
    about_default = "Variable '$f' has invalid default value: found: [1, None]."
    assert variable_message(about_default, {"f": [1, None]}) == about_default


def test_a_large_object_is_echoed_up_to_the_message_cut_not_whole():
    # graphql-js prints every entry; every one of up to 50 errors echoed all 60,000 keys of a refused
    # object, then cut the message to 1,000 characters (review: 5 s of the event loop).
    value = {f"k{i}": "v" for i in range(5_000)}
    echoed = js_inspect(value)
    entries = [f'k{i}: "v"' for i in range(5_000)]
    assert echoed.startswith("{ " + ", ".join(entries[:100]) + ", ")  # graphql-js's words, in order
    assert echoed.endswith(", ... }") and 1_000 < len(echoed) < 1_100
    assert js_inspect({"a": 1, "b": [True, None]}) == "{ a: 1, b: [true, null] }"  # small ones whole
