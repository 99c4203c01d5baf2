"""Token rows kept sparse (``SparseRows``), and the fitted feature space over them (``FeatureSpace``).

The embed job streams users in batches; each batch's token rows are appended here as compact arrays, so
memory grows with the non-zero tokens (a few dozen per user), never with a dense users x tokens matrix.
Dense blocks are made a chunk of rows at a time when fitting and projecting.

The feature space is what the model is versioned with: the vocabulary (tokens seen in at least
``min_rows`` rows at fit time, sorted, so column k always means the same token) and a block-balanced
standardisation: per column (x - mean) / std, then each block divided by sqrt(its columns) so every
block carries the same total variance (24 hour-of-day columns do not outweigh one device column). A token
the vocabulary does not know is ignored, so an old model keeps working on new data until the next embed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from gateway.embeddings.tokens import block_of

MIN_ROWS = 5  # a token seen in fewer rows says more about one user than about behaviour
_FLAT = 1e-9  # a column whose std is below this carries nothing: it is left at 0


class SparseRows:
    """Rows of {token: value}, appended in batches, stored as CSR arrays with a growing token index."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self._cols: list[np.ndarray] = []
        self._vals: list[np.ndarray] = []
        self._lengths: list[np.ndarray] = []
        self._csr: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @classmethod
    def of(cls, rows: Iterable[Mapping[str, float]]) -> SparseRows:
        out = cls()
        out.extend(rows)
        return out

    def extend(self, rows: Iterable[Mapping[str, float]]) -> None:
        cols: list[int] = []
        vals: list[float] = []
        lengths: list[int] = []
        index = self.index
        for row in rows:
            for token, value in row.items():
                col = index.get(token)
                if col is None:
                    col = index[token] = len(index)
                cols.append(col)
                vals.append(value)
            lengths.append(len(row))
        self._cols.append(np.asarray(cols, dtype=np.int32))
        self._vals.append(np.asarray(vals, dtype=np.float64))
        self._lengths.append(np.asarray(lengths, dtype=np.int64))
        self._csr = None

    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, token ids, values), concatenated once and kept."""
        if self._csr is None:
            lengths = np.concatenate([np.zeros(1, np.int64), *self._lengths])
            cols = np.concatenate([np.zeros(0, np.int32), *self._cols])
            vals = np.concatenate([np.zeros(0), *self._vals])
            self._csr = (np.cumsum(lengths), cols, vals)
            self._cols, self._vals, self._lengths = [cols], [vals], [lengths[1:]]
        return self._csr

    def __len__(self) -> int:
        return len(self.csr()[0]) - 1

    def take(self, rows: np.ndarray) -> SparseRows:
        """These rows (by position), same token index: a training or a held-out split."""
        indptr, cols, vals = self.csr()
        rows = np.asarray(rows, dtype=np.int64)
        lengths = np.diff(indptr)[rows]
        picked = (
            np.concatenate([np.arange(indptr[r], indptr[r + 1]) for r in rows])
            if len(rows)
            else np.zeros(0, np.int64)
        )
        out = SparseRows()
        out.index = dict(self.index)
        out._cols, out._vals, out._lengths = [cols[picked]], [vals[picked]], [lengths]
        return out

    def names(self) -> list[str]:
        return sorted(self.index, key=self.index.__getitem__)


@dataclass(frozen=True)
class FeatureSpace:
    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray  # std x sqrt(block size); 1.0 for flat columns

    @classmethod
    def fit(cls, rows: SparseRows, min_rows: int = MIN_ROWS) -> FeatureSpace:
        indptr, cols, vals = rows.csr()
        n = max(len(indptr) - 1, 1)
        seen = np.bincount(cols, minlength=len(rows.index))  # rows per token (a row holds a token once)
        # On a small data set "5 rows" would drop most tokens: ask for 1 % of the rows, at most 5.
        need = max(1, min(min_rows, math.ceil(0.01 * n)))
        names = tuple(sorted(t for t, k in rows.index.items() if seen[k] >= need))
        space = cls(names, np.zeros(len(names)), np.ones(len(names)))
        where = space._columns(rows)
        keep = where[cols] >= 0
        total = np.bincount(where[cols][keep], weights=vals[keep], minlength=len(names))
        squares = np.bincount(where[cols][keep], weights=vals[keep] ** 2, minlength=len(names))
        mean = total / n
        std = np.sqrt(np.maximum(squares / n - mean**2, 0.0))
        sizes = Counter(block_of(name) for name in names)
        weight = np.array([math.sqrt(sizes[block_of(name)]) for name in names])
        return cls(names, mean, np.where(std > _FLAT, std * weight, 1.0))

    def _columns(self, rows: SparseRows) -> np.ndarray:
        """For each token id of ``rows``: its column here, or -1."""
        position = {name: k for k, name in enumerate(self.names)}
        return np.array([position.get(t, -1) for t in rows.names()], dtype=np.int64)

    def raw(self, rows: SparseRows, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows [start, stop) as a dense (rows, features) matrix of token values (0 where absent)."""
        indptr, cols, vals = rows.csr()
        stop = len(indptr) - 1 if stop is None else stop
        lo, hi = indptr[start], indptr[stop]
        where = self._columns(rows)[cols[lo:hi]]
        row = np.repeat(np.arange(stop - start), np.diff(indptr[start : stop + 1]))
        keep = where >= 0
        out = np.zeros((stop - start, len(self.names)))
        out[row[keep], where[keep]] = vals[lo:hi][keep]
        return out

    def standardised(self, rows: SparseRows, start: int = 0, stop: int | None = None) -> np.ndarray:
        return (self.raw(rows, start, stop) - self.mean) / self.scale
