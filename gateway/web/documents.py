"""Parsed and validated documents, kept once per process and shared by every step that needs them (the
response cache's key, the operation rules, strawberry's parse and validate).

Parsing and validating are pure Python and grow with the document: a large one would hold the event
loop (and with it every other request and /healthz) for as long as they run. So:

* the limits come first: the size check is O(1), and the parser stops at the token limit
  (``gateway/security/limits.py``);
* documents over ``OFF_LOOP_CHARS`` are parsed and validated in a worker thread, and so are documents
  of more than ``OFF_LOOP_SELECTIONS`` selections, however short; the loop keeps serving meanwhile (the
  interpreter switches threads every few milliseconds);
* both are cached: the parse by (text, limits), the validation by the parsed document's *identity* and
  the rules (graphql-core's AST nodes hash by walking the whole tree on every call, which for a large
  document costs more than validating it; the parse cache hands out one object per text).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from itertools import islice
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, print_ast
from strawberry.schema.schema import validate_document  # graphql-core's rules + strawberry's own

from gateway.security.limits import Limits, bounded_rules, parse_limited, written_selections

OFF_LOOP_CHARS = 4_000
# Validation is quadratic in a selection set's same-named fields (graphql-core's field merging): 1,300
# copies of one field fit in 3,919 characters and held the event loop 0.3 s (review). A document with
# more selections than this is validated in a worker thread however short it is.
OFF_LOOP_SELECTIONS = 100
CACHE_SIZE = 512


class LRU:
    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.data: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.maxsize:
            self.data.popitem(last=False)


_PARSED = LRU(CACHE_SIZE)
_VALIDATED = LRU(CACHE_SIZE)  # (id(document), rules) -> (document, errors): the document kept alive
_PRINTED = LRU(CACHE_SIZE)  # id(document) -> (document, its normalised text)


def parsed_or_none(query: str, limits: Limits) -> DocumentNode | None:
    """The cached parse of ``query``, parsing it here (on the loop) when it is small; None when it is
    not valid within the limits, or is large and not parsed yet."""
    key = (query, limits.max_tokens, limits.max_query_chars)
    document = _PARSED.get(key)
    if document is None and len(query) <= OFF_LOOP_CHARS:
        try:
            document = parse_limited(query, limits)
        except GraphQLError:
            return None
        _PARSED.put(key, document)
    return document


async def parse(query: str, limits: Limits) -> DocumentNode | None:
    """The parsed document (a worker thread parses a large one), None when it is not valid within the
    limits: strawberry's own parse then reports why, with the same options."""
    document = parsed_or_none(query, limits)
    if document is not None or len(query) <= OFF_LOOP_CHARS or len(query) > limits.max_query_chars:
        return document
    try:
        document = await asyncio.to_thread(parse_limited, query, limits)
    except GraphQLError:
        return None
    _PARSED.put((query, limits.max_tokens, limits.max_query_chars), document)
    return document


async def validate(
    schema: GraphQLSchema, document: DocumentNode, rules: Sequence[type[ASTValidationRule]], large: bool
) -> list[GraphQLError]:
    key = (id(document), tuple(rules))
    hit = _VALIDATED.get(key)
    if hit is not None and hit[0] is document:
        return list(hit[1])
    rules = bounded_rules(rules)  # a budget refusal says why (limits.BoundedFieldMerging)
    if large or _more_selections_than(document, OFF_LOOP_SELECTIONS):
        errors = await asyncio.to_thread(validate_document, schema, document, rules)
    else:
        errors = validate_document(schema, document, rules)
    _VALIDATED.put(key, (document, errors))
    return list(errors)


def _more_selections_than(document: DocumentNode, limit: int) -> bool:
    return next(islice(written_selections(document), limit, None), None) is not None


def normalised(document: DocumentNode) -> str:
    """The document printed back: comments, whitespace and commas no longer tell two requests apart."""
    hit = _PRINTED.get(id(document))
    if hit is not None and hit[0] is document:
        return hit[1]
    text = print_ast(document)
    _PRINTED.put(id(document), (document, text))
    return text
