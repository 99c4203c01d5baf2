"""Counter-based random numbers: uniform draws that are a pure function of (seed, user, stream, position).

Synthesis works on whole batches with numpy, yet every user's documents must depend only on
(seed, user_id): never on which batch the user landed in or on the other users in it. A sequential
generator per batch cannot give that; hashing the coordinates of each draw with SplitMix64's finaliser
can, at numpy speed.
"""

from __future__ import annotations

import numpy as np

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_POSITION = np.uint64(0xD1B54A32D192ED03)  # odd multiplier that spreads position codes over 64 bits
_TO_UNIT = 2.0**-53


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection of uint64 with good avalanche (uint64 arithmetic wraps)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def user_keys(seed: int, user_ids: np.ndarray) -> np.ndarray:
    """One uint64 key per user for this seed."""
    seed_key = np.uint64(((seed & _MASK) * _GOLDEN) & _MASK)
    return _mix(user_ids.astype(np.int64).view(np.uint64) ^ seed_key)


def uniform(keys: np.ndarray, stream: int, positions: np.ndarray | None = None) -> np.ndarray:
    """Floats in [0, 1), one per key. ``stream`` names what the draw is for; ``positions`` (uint64, same
    length as ``keys``) tells apart several draws of one user on that stream."""
    x = keys + np.uint64((stream * _GOLDEN) & _MASK)
    if positions is not None:
        x = x ^ (positions * _POSITION)
    return (_mix(_mix(x)) >> np.uint64(11)).astype(np.float64) * _TO_UNIT


def below(
    keys: np.ndarray, stream: int, bound: np.ndarray | int, positions: np.ndarray | None = None
) -> np.ndarray:
    """Integers in [0, bound), one per key (``bound`` >= 1)."""
    return (uniform(keys, stream, positions) * bound).astype(np.int64)


def standard_normal(keys: np.ndarray, stream: int, positions: np.ndarray | None = None) -> np.ndarray:
    """N(0, 1) draws by Box-Muller from two uniform streams (``stream`` and ``stream + 1``)."""
    u1 = uniform(keys, stream, positions)
    u2 = uniform(keys, stream + 1, positions)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
