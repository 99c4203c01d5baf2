"""Behaviour embeddings: what a user did on the site, as a 128-d unit vector.

The featuriser (``features``) turns documents into raw feature matrices; here each matrix is
standardised and projected on its principal directions fitted on the data (``Projection``). Fewer
informative directions than 128 leave the trailing dimensions zero, so vectors are always 128-d and
identical journeys get identical vectors. Rows are L2-normalised: cosine = dot product. A fitted
``BehaviourModel`` (users + (user, page type) rows) is saved with a version number next to the data.
Everything here is numpy on plain data, meant to run in a worker thread; ``gateway.jobs.embed`` does the I/O.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from gateway.embeddings.features import (
    BehaviourData,
    FeatureSpace,
    PageRow,
    page_rows_and_features,
    user_features,
)
from gateway.models import Document

EMBED_DIM = 128
MAX_FIT_ROWS = 100_000  # larger sets are fitted on a seeded sample: same directions, bounded time
MODEL_FORMAT = 1
_MODEL_FILE = re.compile(r"^behaviour-v(\d+)\.json$")
_ZERO_NORM = 1e-12


@dataclass(frozen=True)
class Projection:
    """Standardise, then project on the principal directions of the fitted data, then L2-normalise."""

    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # (features, dim); columns past ``informative`` are zero
    informative: int

    @classmethod
    def fit(
        cls, x: np.ndarray, dim: int = EMBED_DIM, seed: int = 0, max_rows: int = MAX_FIT_ROWS
    ) -> Projection:
        rows = x
        if len(x) > max_rows:
            pick = np.sort(np.random.default_rng(seed).choice(len(x), size=max_rows, replace=False))
            rows = x[pick]
        n_features = x.shape[1]
        if len(rows) == 0:
            zeros = np.zeros(n_features)
            return cls(zeros, np.ones(n_features), np.zeros((n_features, dim)), 0)
        mean = rows.mean(axis=0)
        std = rows.std(axis=0)
        scale = np.where(std > _ZERO_NORM, std, 1.0)
        z = (rows - mean) / scale
        # The feature count is small (~100), so the exact eigendecomposition of the covariance is the
        # cheapest truncated SVD there is, and it is deterministic where randomized SVD needs a seed.
        values, vectors = np.linalg.eigh(z.T @ z / len(z))
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
        top = float(values[0]) if len(values) else 0.0
        informative = min(dim, int(np.sum(values > top * 1e-10))) if top > _ZERO_NORM else 0
        components = np.zeros((n_features, dim))
        for k in range(informative):
            v = vectors[:, k]
            # Eigenvectors come with an arbitrary sign; fix it so refits on the same data agree.
            components[:, k] = v if v[np.argmax(np.abs(v))] >= 0 else -v
        return cls(mean, scale, components, informative)

    @property
    def dim(self) -> int:
        return int(self.components.shape[1])

    def apply(self, x: np.ndarray) -> np.ndarray:
        projected = ((x - self.mean) / self.scale) @ self.components
        norms = np.linalg.norm(projected, axis=1, keepdims=True)
        out = np.divide(projected, norms, out=np.zeros_like(projected), where=norms > _ZERO_NORM)
        # A row at the exact centre has no direction: give all of them one fixed unit vector.
        out[norms[:, 0] <= _ZERO_NORM, -1] = 1.0
        return out.astype(np.float32)


@dataclass(frozen=True)
class BehaviourModel:
    version: int
    seed: int
    space: FeatureSpace
    users: Projection
    pages: Projection
    fitted: dict[str, int] = field(default_factory=dict)  # rows seen at fit time, per kind

    @classmethod
    def fit(
        cls, data: BehaviourData, seed: int = 0, dim: int = EMBED_DIM, version: int = 1
    ) -> BehaviourModel:
        return cls.fit_transform(data, seed, dim, version)[0]

    @classmethod
    def fit_transform(
        cls, data: BehaviourData, seed: int = 0, dim: int = EMBED_DIM, version: int = 1
    ) -> tuple[BehaviourModel, np.ndarray, list[PageRow], np.ndarray]:
        """Fit on ``data`` and embed it: (model, user vectors, page rows, page vectors), featurising once."""
        space = FeatureSpace.from_data(data)
        user_x = user_features(space, data)
        page_list, page_x = page_rows_and_features(space, data)
        users, pages = Projection.fit(user_x, dim, seed), Projection.fit(page_x, dim, seed)
        fitted = {"users": len(user_x), "pages": len(page_list)}
        model = cls(version=version, seed=seed, space=space, users=users, pages=pages, fitted=fitted)
        return model, users.apply(user_x), page_list, pages.apply(page_x)

    def embed_users(self, data: BehaviourData) -> np.ndarray:
        return self.users.apply(user_features(self.space, data))

    def embed_pages(self, data: BehaviourData) -> tuple[list[PageRow], np.ndarray]:
        rows, x = page_rows_and_features(self.space, data)
        return rows, self.pages.apply(x)

    # -- persistence ---------------------------------------------------------------------------------
    def save(self, model_dir: Path) -> Path:
        """Write ``behaviour-v{version}.npz`` + ``.json`` atomically; returns the json path."""
        model_dir.mkdir(parents=True, exist_ok=True)
        stem = model_dir / f"behaviour-v{self.version:04d}"
        arrays = {
            f"{kind}_{part}": getattr(getattr(self, kind), part)
            for kind in ("users", "pages")
            for part in ("mean", "scale", "components")
        }
        meta = {
            "format": MODEL_FORMAT,
            "version": self.version,
            "seed": self.seed,
            "dim": self.users.dim,
            "space": self.space.to_json(),
            "informative": {"users": self.users.informative, "pages": self.pages.informative},
            "fitted": self.fitted,
            "user_features": self.space.user_feature_names(),
            "page_features": self.space.page_feature_names(),
            "created": datetime.now().isoformat(timespec="seconds"),
        }
        npz, js = stem.with_suffix(".npz"), stem.with_suffix(".json")
        with open(f"{npz}.tmp", "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(f"{npz}.tmp", npz)
        Path(f"{js}.tmp").write_text(json.dumps(meta, indent=1))
        os.replace(f"{js}.tmp", js)  # the json last: its presence means the npz is complete
        return js

    @classmethod
    def load(cls, model_dir: Path, version: int | None = None) -> BehaviourModel:
        """The given version, or the newest one; FileNotFoundError when there is none."""
        version = version if version is not None else latest_version(model_dir)
        if version is None:
            raise FileNotFoundError(f"no behaviour model in {model_dir}: run `funnelgate embed`")
        stem = model_dir / f"behaviour-v{version:04d}"
        meta = json.loads(stem.with_suffix(".json").read_text())
        if meta.get("format") != MODEL_FORMAT:
            raise ValueError(f"{stem}.json has model format {meta.get('format')}, expected {MODEL_FORMAT}")
        with np.load(stem.with_suffix(".npz")) as arrays:
            proj = {
                kind: Projection(
                    arrays[f"{kind}_mean"],
                    arrays[f"{kind}_scale"],
                    arrays[f"{kind}_components"],
                    int(meta["informative"][kind]),
                )
                for kind in ("users", "pages")
            }
        return cls(
            version=int(meta["version"]),
            seed=int(meta["seed"]),
            space=FeatureSpace.from_json(meta["space"]),
            users=proj["users"],
            pages=proj["pages"],
            fitted={k: int(v) for k, v in meta.get("fitted", {}).items()},
        )


def model_versions(model_dir: Path) -> list[int]:
    if not model_dir.is_dir():
        return []
    found = (_MODEL_FILE.match(p.name) for p in model_dir.iterdir())
    return sorted(
        int(m.group(1)) for m in found if m and (model_dir / m.group(0)).with_suffix(".npz").exists()
    )


def latest_version(model_dir: Path) -> int | None:
    versions = model_versions(model_dir)
    return versions[-1] if versions else None


def by_user(rows: Sequence[Document]) -> dict[int, list[Document]]:
    """Group documents carrying ``user_id`` per user, order kept."""
    grouped: dict[int, list[Document]] = {}
    for row in rows:
        grouped.setdefault(int(row["user_id"]), []).append(row)
    return grouped
