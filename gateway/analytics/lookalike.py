"""Lookalike conversion likelihood: how many of a user's nearest behavioural neighbours converted.

A score no funnel tool gives: for a user who has not bought yet, "people who behave like this one buy
with probability p". It reads the ``converted`` flag from the neighbours' metadata (the similar-users
result), so it costs nothing beyond the similar-users search.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import BadInput

DEFAULT_K = 10  # the default similar-users limit, so the score reuses its cached answer


def conversion_likelihood(neighbours: Sequence[Mapping[str, Any]], k: int | None = None) -> float | None:
    """Share of converted users among the first ``k`` neighbours (all when None); None without any.

    ``neighbours`` are similar-users results, best first, each with ``metadata["converted"]``.
    """
    if k is not None and k < 1:
        raise BadInput(f"k must be positive, got {k}")
    nearest = list(neighbours[:k] if k is not None else neighbours)
    if not nearest:
        return None
    converted = sum(1 for n in nearest if bool((n.get("metadata") or {}).get("converted")))
    return converted / len(nearest)


@dataclass(frozen=True)
class LookalikeComparison:
    """Mean likelihood for known converters vs a random sample (None = no user with neighbours)."""

    converted_mean: float | None
    random_mean: float | None
    converted_users: int
    random_users: int

    @property
    def lift(self) -> float | None:
        if self.converted_mean is None or not self.random_mean:
            return None
        return self.converted_mean / self.random_mean


def compare_lookalike(
    converted: Sequence[float | None], random: Sequence[float | None]
) -> LookalikeComparison:
    """Sanity check of the score: converters' neighbours should convert more often than anyone's."""
    conv = [x for x in converted if x is not None]
    rand = [x for x in random if x is not None]
    return LookalikeComparison(
        converted_mean=statistics.fmean(conv) if conv else None,
        random_mean=statistics.fmean(rand) if rand else None,
        converted_users=len(conv),
        random_users=len(rand),
    )
