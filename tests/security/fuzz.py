"""Random GraphQL requests generated from the introspected schema: nested selections (past the depth
limit too), aliases, fragments, literal and variable arguments of every type (valid, borderline and
wrong), a few broken documents. Used by tests/security/test_fuzz.py and bench/bench_fuzz.py."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

INTROSPECTION = """{ __schema { queryType { name } types { kind name enumValues { name }
  inputFields { name type { ...T } }
  fields { name args { name type { ...T } } type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"""

INTS = [0, 1, 2, 3, 5, 10, 100, 1000, 1001, -1, -7, 2**31 - 1]
FLOATS = [0.0, 0.1, 1.5, 5.0, -1.0, 1e9]
STRINGS = ["home_page", "search_page", "payment_page", "payment_confirmation_page", "s1", "s4b", "", "nowhere",
           "x" * 300, "NQ==", "not-base64!", "\\u00e9t\\u00e9", "2015-01-05"]  # fmt: skip
DATES = ["2015-01-01", "2015-01-05", "2015-02-28", "2014-12-31", "2030-01-01", "2015-13-45", "yesterday"]


def _unwrap(ref: dict[str, Any]) -> tuple[dict[str, Any], bool, bool]:
    """(named type ref, non-null outside, is a list)."""
    non_null = ref["kind"] == "NON_NULL"
    is_list = False
    while ref.get("ofType") is not None and ref["kind"] in ("NON_NULL", "LIST"):
        is_list = is_list or ref["kind"] == "LIST"
        ref = ref["ofType"]
    return ref, non_null, is_list


@dataclass
class Fuzzer:
    schema: dict[str, Any]
    rng: random.Random
    types: dict[str, Any] = field(init=False)
    variables: dict[str, Any] = field(default_factory=dict)
    definitions: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.types = {t["name"]: t for t in self.schema["types"]}

    # -- values --------------------------------------------------------------------------------------
    def value(self, ref: dict[str, Any], depth: int = 0) -> Any:
        named, _, is_list = _unwrap(ref)
        if is_list and self.rng.random() < 0.8:
            return [self.scalar(named, depth) for _ in range(self.rng.randrange(0, 4))]
        return self.scalar(named, depth)

    def scalar(self, named: dict[str, Any], depth: int) -> Any:
        rng, name = self.rng, named["name"]
        if rng.random() < 0.02:
            return rng.choice([None, "wrong", 3, True, [1]])  # a value of the wrong type
        kind = self.types.get(name, {}).get("kind")
        if kind == "ENUM":
            return ("enum", rng.choice([v["name"] for v in self.types[name]["enumValues"]] + ["NOPE"]))
        if kind == "INPUT_OBJECT":
            if depth > 2:
                return {}
            fields = self.types[name]["inputFields"]
            return {f["name"]: self.value(f["type"], depth + 1) for f in fields if rng.random() < 0.5}
        return {
            "Int": lambda: rng.choice(INTS),
            "Float": lambda: rng.choice(FLOATS),
            "String": lambda: rng.choice(STRINGS),
            "ID": lambda: rng.choice(STRINGS),
            "Boolean": lambda: rng.random() < 0.5,
            "Date": lambda: rng.choice(DATES),
            "DateTime": lambda: "2015-01-05T10:00:00+00:00",
            "JSON": lambda: {"a": 1},
        }.get(name, lambda: rng.choice(STRINGS))()

    def literal(self, value: Any) -> str:
        if isinstance(value, tuple) and value[0] == "enum":
            return value[1]
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {self.literal(v)}" for k, v in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ", ".join(self.literal(v) for v in value) + "]"
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return json.dumps(value)
        return repr(value)

    def jsonable(self, value: Any) -> Any:
        if isinstance(value, tuple):
            return value[1]
        if isinstance(value, dict):
            return {k: self.jsonable(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.jsonable(v) for v in value]
        return value

    def type_text(self, ref: dict[str, Any]) -> str:
        if ref["kind"] == "NON_NULL":
            return self.type_text(ref["ofType"]) + "!"
        if ref["kind"] == "LIST":
            return "[" + self.type_text(ref["ofType"]) + "]"
        return ref["name"]

    # -- selections ----------------------------------------------------------------------------------
    def arguments(self, args: list[dict[str, Any]]) -> str:
        parts = []
        for arg in args:
            _, non_null, _ = _unwrap(arg["type"])
            if not (non_null and self.rng.random() < 0.97) and self.rng.random() < 0.6:
                continue
            value = self.value(arg["type"])
            if self.rng.random() < 0.25:
                name = f"v{len(self.variables)}"
                self.variables[name] = (self.type_text(arg["type"]), self.jsonable(value))
                parts.append(f"{arg['name']}: ${name}")
            else:
                parts.append(f"{arg['name']}: {self.literal(value)}")
        return f"({', '.join(parts)})" if parts else ""

    def selection(self, type_name: str, depth: int, max_depth: int) -> str:
        fields = self.types[type_name]["fields"]
        chosen = self.rng.sample(fields, k=min(len(fields), self.rng.randrange(1, 4)))
        deeper = [f for f in fields if _unwrap(f["type"])[0]["kind"] == "OBJECT"]
        if deeper and depth < max_depth and self.rng.random() < 0.8:
            chosen.append(self.rng.choice(deeper))  # keep going down: nesting is what the limits are for
            chosen = list({f["name"]: f for f in chosen}.values())
        parts = []
        for f in chosen:
            named, _, _ = _unwrap(f["type"])
            alias = f"a{self.rng.randrange(1000)}: " if self.rng.random() < 0.15 else ""
            text = f"{alias}{f['name']}{self.arguments(f['args'])}"
            if named["kind"] in ("OBJECT", "INTERFACE", "UNION"):
                if depth >= max_depth:
                    text = (
                        f"{alias}__typename" if self.rng.random() < 0.9 else text
                    )  # (else: a missing selection)
                else:
                    inner = self.selection(named["name"], depth + 1, max_depth)
                    if self.rng.random() < 0.1:
                        fragment = f"F{len(self.definitions)}"
                        self.definitions.append(f"fragment {fragment} on {named['name']} {{ {inner} }}")
                        inner = f"...{fragment}"
                    elif self.rng.random() < 0.1:
                        inner = f"... on {named['name']} {{ {inner} }}"
                    text += f" {{ {inner} }}"
            elif self.rng.random() < 0.02:
                text += " { nope }"  # a selection on a scalar
            parts.append(text)
        if self.rng.random() < 0.05:
            parts.append("__typename")
        return " ".join(parts)

    def request(self) -> dict[str, Any]:
        self.variables, self.definitions = {}, []
        roll = self.rng.random()
        if roll < 0.03:
            return {
                "query": self.rng.choice(
                    ["{", "{ funnel(", "query { health { status }", "}}}", "mutation { x }", ""]
                )
            }
        if roll < 0.06:
            return {"query": "{ __schema { types { name fields { name } } } }"}
        max_depth = self.rng.choice([1, 2, 3, 4, 5, 6, 8, 12, 16])
        body = self.selection(self.schema["queryType"]["name"], 1, max_depth)
        declared = ", ".join(f"${name}: {type_text}" for name, (type_text, _) in self.variables.items())
        head = f"query Fuzz({declared})" if declared else "query Fuzz"
        document = " ".join([f"{head} {{ {body} }}", *self.definitions])
        variables = {name: value for name, (_, value) in self.variables.items()}
        return {"query": document, "variables": variables or None, "operationName": "Fuzz"}


def internal_errors(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        return []
    return [
        e
        for e in body.get("errors") or []
        if (e.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR"
    ]
