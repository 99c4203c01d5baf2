"""The learned projection: principal directions of the standardised token space, up to 128 of them.

The feature space has a few hundred columns, so the exact eigendecomposition of its covariance is the
cheapest truncated SVD there is, and deterministic (no seed, no sampling: the covariance is accumulated
over every row, a chunk at a time). The kept directions are the top ``min(128, features, directions with
variance)``: a data set that cannot fill 128 gets fewer dimensions, never zero padding (padding made a
third of main's "128-d" vectors dead). Vectors are L2-normalised, so cosine similarity is a dot product.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from gateway.stores.collections import DIM

MAX_DIM = DIM  # the design's 128
_ZERO = 1e-12
_RELATIVE = 1e-10  # an eigenvalue below this share of the largest is rounding noise, not a direction


def covariance(chunks: Iterable[np.ndarray], features: int) -> np.ndarray:
    """E[z zT] of standardised rows (their mean is 0 by construction), summed chunk by chunk."""
    total = np.zeros((features, features))
    n = 0
    for z in chunks:
        total += z.T @ z
        n += len(z)
    return total / max(n, 1)


@dataclass(frozen=True)
class Pca:
    components: np.ndarray  # (features, dim)
    spectrum: np.ndarray  # every eigenvalue, descending: what the directions explain

    @classmethod
    def fit(cls, cov: np.ndarray, max_dim: int = MAX_DIM) -> Pca:
        values, vectors = np.linalg.eigh(cov)
        order = np.argsort(values)[::-1]
        values, vectors = np.clip(values[order], 0.0, None), vectors[:, order]
        top = float(values[0]) if len(values) else 0.0
        informative = int(np.sum(values > top * _RELATIVE)) if top > _ZERO else 0
        # At least one column, so that even a one-user data set embeds (to the fixed unit vector below).
        dim = max(1, min(max_dim, informative))
        components = np.zeros((cov.shape[0], dim))
        for k in range(min(dim, informative)):
            v = vectors[:, k]
            # Eigenvectors come with an arbitrary sign; fix it so refits on the same data agree.
            components[:, k] = v if v[np.argmax(np.abs(v))] >= 0 else -v
        return cls(components, values)

    @property
    def dim(self) -> int:
        return int(self.components.shape[1])

    @property
    def explained(self) -> float:
        """Share of the standardised space's total variance the kept directions carry."""
        total = float(self.spectrum.sum())
        return float(self.spectrum[: self.dim].sum() / total) if total > _ZERO else 1.0

    def explained_at(self, dims: Iterable[int] = (8, 16, 32, 64, 128)) -> dict[str, float]:
        total = float(self.spectrum.sum()) or 1.0
        return {str(k): round(float(self.spectrum[:k].sum() / total), 4) for k in dims if k <= self.dim}

    def apply(self, z: np.ndarray) -> np.ndarray:
        projected = z @ self.components
        norms = np.linalg.norm(projected, axis=1, keepdims=True)
        out = np.divide(projected, norms, out=np.zeros_like(projected), where=norms > _ZERO)
        # A row at the exact centre has no direction: all of them get one fixed unit vector.
        out[norms[:, 0] <= _ZERO, -1] = 1.0
        return out.astype(np.float32)
