"""Health of the gateway's dependencies."""

from __future__ import annotations

from typing import Any

import strawberry


@strawberry.type(description="One backend the gateway depends on.")
class Dependency:
    role: str = strawberry.field(description="document_store, vector_index or cache")
    backend: str
    up: bool
    latency_ms: float | None
    error: str | None
    embeddings: str | None = strawberry.field(
        description="Vector index only: the behaviour model version whose vectors serve, or "
        "'no embeddings yet: run `funnelgate embed`' (the vector fields answer UNAVAILABLE until then). "
        "'model version N, stale: embedded from dataset A, dataset B is served now …' when a re-ingest "
        "replaced the data since the embed: the vector fields still answer, from the data of dataset A."
    )

    @classmethod
    def from_report(cls, role: str, report: dict[str, Any]) -> Dependency:
        return cls(
            role=role,
            backend=report["backend"],
            up=report["status"] == "up",
            latency_ms=report.get("latency_ms"),
            error=report.get("error"),
            embeddings=report.get("embeddings"),
        )


@strawberry.type(description="Overall status: ok when every dependency is up, else degraded.")
class Health:
    status: str
    dependencies: list[Dependency]

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> Health:
        deps = [Dependency.from_report(role, r) for role, r in report["dependencies"].items()]
        return cls(status=report["status"], dependencies=deps)
