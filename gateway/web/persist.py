"""``funnelgate persist FILE…``: add operations to the persisted-query manifest (the allow-list).

Each ``.graphql`` file is one document, registered under the SHA-256 of its exact text (what a client
sends, byte for byte); a ``.json`` file is an Apollo persisted-query manifest whose operations are merged.
Every document is checked first, the way a request would be: it must parse within the limits, be valid
against the schema (depth, aliases and introspection rules included) and cost no more than the budget
at its default variables; a document that fails is reported and not registered. An operation already in
the manifest is reported as such and left as it is; the summary says how many were new and how many
the manifest holds. A running gateway reads the changed manifest within a second (no restart).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from graphql import GraphQLError, OperationDefinitionNode, parse, specified_rules
from strawberry.schema.schema import validate_document

from gateway.config import Settings
from gateway.roles import Role
from gateway.security.analysis import analyse
from gateway.security.limits import Limits, bounded_rules, parse_limited
from gateway.security.persisted import Operation, read_manifest, sha256, write_manifest
from gateway.security.refusals import cost_error
from gateway.web.app import schema_for
from gateway.web.guard import schema_rules


def _check(text: str, limits: Limits) -> tuple[str | None, str, list[str]]:
    """(operation name, operation type, problems) of one document."""
    schema = schema_for(limits)
    try:
        document = parse_limited(text, limits)
    except GraphQLError as exc:
        return None, "query", [exc.message]
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    name = operations[0].name.value if operations and operations[0].name else None
    kind = operations[0].operation.value if operations else "query"
    # The standard rules as well: strawberry's validate_document runs only the rules it is given, and a
    # request is validated with both (guard.py), so `{ nope }` must be refused here too.
    errors = validate_document(schema._schema, document, bounded_rules((*specified_rules, *limits.rules)))
    if errors:
        return name, kind, [e.message for e in errors]
    problems = []
    rules = schema_rules(schema)
    for operation in operations:
        op_name = operation.name.value if operation.name else None
        analysis = analyse(schema._schema, document, op_name, None, rules, Role.ADMIN)
        if analysis is not None and analysis.cost > limits.max_cost:
            problems.append(cost_error(analysis.cost, limits.max_cost).message)
    return name, kind, problems


def _operations(text: str) -> str:
    """ "A (query), B (mutation)" for a document of several operations; "" for one."""
    try:
        document = parse(text)
    except GraphQLError:
        return ""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) < 2:
        return ""
    return ", ".join(
        f"{op.name.value if op.name else '(anonymous)'} ({op.operation.value})" for op in operations
    )


@dataclass
class Registered:
    """What ``register`` did: one line per operation added (``added``) or found already registered
    (``already``), the problems, and how many operations the manifest holds afterwards."""

    added: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    total: int = 0


def register(settings: Settings, files: Iterable[Path]) -> Registered:
    """Add the files' operations to the manifest (written only when one is new)."""
    limits = Limits.from_settings(settings)
    path = settings.persisted_queries_path
    manifest = read_manifest(path)
    out = Registered()
    for file in files:
        try:
            if file.suffix == ".json":
                candidates = list(read_manifest(file).values())
            else:
                candidates = [Operation(sha256(file.read_text()), file.read_text())]
        except OSError as exc:  # its text names the path again: the reason alone
            out.problems.append(f"{file}: {exc.strerror or exc}")
            continue
        except (ValueError, UnicodeDecodeError) as exc:
            out.problems.append(f"{file}: {exc}")
            continue
        for candidate in candidates:
            name, kind, found = _check(candidate.body, limits)
            if found:
                out.problems += [f"{file}: {p}" for p in found]
                continue
            # The manifest's entry names the first operation (Apollo's format has one per entry); a client
            # may run any of the document's operations by operationName, so the report lists them all.
            line = (
                f"{candidate.id}  {_operations(candidate.body) or name or '(anonymous)'}  {kind}  from {file}"
            )
            if candidate.id in manifest:  # the same text: already allowed, its entry kept as it is
                out.already.append(f"{line}  (already registered)")
                continue
            manifest[candidate.id] = Operation(candidate.id, candidate.body, name or candidate.name, kind)
            out.added.append(line)
    if out.added:
        write_manifest(path, manifest.values())
    out.total = len(manifest)
    return out
