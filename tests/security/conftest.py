"""The API suite's fixtures (real backends with the hand-made fixture loaded)."""

from __future__ import annotations

from tests.api.conftest import counted  # noqa: F401  (re-exported fixture)
from tests.api.conftest import services as services  # the fixture, under its own name for pytest
