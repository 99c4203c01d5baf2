"""The behaviour model: a fitted feature space and projection for users and for (user, page) rows.

``Embedder`` = vocabulary + block-balanced standardisation (``space``) + principal directions (``pca``).
``BehaviourModel`` holds one for users and one for pages, with what the vectors were cut before (the
outcome step and the masked steps), and is saved next to the data as ``behaviour-v{NNNN}.{json,npz}``:
the json lists the features, dimensions and explained variance (and, after the build, the Milvus
collections and index it fed), the npz the arrays. The version is also in the Milvus collection names
(``user_behavior_embeddings_v{NNNN}``), so a backup pairs them. Plain numpy, meant for a worker thread.

Retention (:func:`prune_models`): after a successful switch ``embed`` keeps the new model and the one(s)
the vectors it replaced were made by, and deletes every other older one. No gateway reads a model file
while serving (search reads Milvus), a backup copies the model into itself, and numbers are never reused
(the newest is always kept), so the files of models no vector came from any more are only disk.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from gateway.embeddings.events import Outcome
from gateway.embeddings.featurise import Featurised
from gateway.embeddings.pca import MAX_DIM, Pca, covariance
from gateway.embeddings.space import MIN_ROWS, FeatureSpace, SparseRows

MODEL_FORMAT = 2  # 1 was main's hand-built features with zero padding; it cannot be read any more
KIND = "pre-outcome"
CHUNK = 4_096  # rows densified at a time
_MODEL_FILE = re.compile(r"^behaviour-v(\d+)\.json$")
# Every file save() writes, finished (.json, .npz) or not (.tmp, left by a kill mid-save).
_ANY_MODEL_FILE = re.compile(r"^behaviour-v(\d+)\.(json|npz)(\.tmp)?$")


@dataclass(frozen=True)
class Embedder:
    space: FeatureSpace
    pca: Pca

    @classmethod
    def fit(cls, rows: SparseRows, max_dim: int = MAX_DIM, min_rows: int = MIN_ROWS) -> Embedder:
        space = FeatureSpace.fit(rows, min_rows)
        chunks = (space.standardised(rows, s, min(s + CHUNK, len(rows))) for s in range(0, len(rows), CHUNK))
        return cls(space, Pca.fit(covariance(chunks, len(space.names)), max_dim))

    @property
    def dim(self) -> int:
        return self.pca.dim

    def apply(self, rows: SparseRows, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Unit vectors of rows [start, stop)."""
        return self.pca.apply(self.space.standardised(rows, start, stop))

    def chunks(self, rows: SparseRows, size: int = CHUNK) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, len(rows), size):
            yield start, self.apply(rows, start, min(start + size, len(rows)))

    def describe(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "features": len(self.space.names),
            "explained_variance": round(self.pca.explained, 4),
            "explained_at": self.pca.explained_at(),
        }


@dataclass(frozen=True)
class BehaviourModel:
    version: int
    outcome: Outcome
    users: Embedder
    pages: Embedder
    fitted: dict[str, int] = field(default_factory=dict)  # rows seen at fit time, per kind
    collections: dict[str, Any] = field(default_factory=dict)  # filled in by the job after the build

    @classmethod
    def fit(cls, data: Featurised, version: int = 1, max_dim: int = MAX_DIM) -> BehaviourModel:
        users, pages = Embedder.fit(data.users, max_dim), Embedder.fit(data.pages, max_dim)
        fitted = {"users": len(data.users), "pages": len(data.pages), "converted": sum(data.converted)}
        return cls(version, data.outcome, users, pages, fitted)

    def summary(self) -> dict[str, Any]:
        return {"users": self.users.describe(), "pages": self.pages.describe()}

    # -- persistence ---------------------------------------------------------------------------------
    def save(self, model_dir: Path) -> Path:
        """Write the npz then the json, each atomically; the json's presence means the npz is complete."""
        model_dir.mkdir(parents=True, exist_ok=True)
        stem = model_dir / f"behaviour-v{self.version:04d}"
        arrays: dict[str, Any] = {
            f"{kind}_{part}": value
            for kind, e in (("users", self.users), ("pages", self.pages))
            for part, value in (
                ("mean", e.space.mean),
                ("scale", e.space.scale),
                ("components", e.pca.components),
                ("spectrum", e.pca.spectrum),
            )
        }
        meta = {
            "format": MODEL_FORMAT,
            "kind": KIND,
            "version": self.version,
            "outcome_step": self.outcome.step,
            "masked_steps": sorted(self.outcome.masked),
            "cut_at": self.outcome.at.isoformat() if self.outcome.at else None,
            **{kind: {**e.describe(), "names": list(e.space.names)} for kind, e in self._kinds()},
            "fitted": self.fitted,
            "collections": self.collections,
            "created": datetime.now().isoformat(timespec="seconds"),
        }
        npz, js = stem.with_suffix(".npz"), stem.with_suffix(".json")
        with open(f"{npz}.tmp", "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(f"{npz}.tmp", npz)
        Path(f"{js}.tmp").write_text(json.dumps(meta, indent=1))
        os.replace(f"{js}.tmp", js)
        return js

    def _kinds(self) -> tuple[tuple[str, Embedder], ...]:
        return (("users", self.users), ("pages", self.pages))

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
            kinds = {
                kind: Embedder(
                    FeatureSpace(tuple(meta[kind]["names"]), arrays[f"{kind}_mean"], arrays[f"{kind}_scale"]),
                    Pca(arrays[f"{kind}_components"], arrays[f"{kind}_spectrum"]),
                )
                for kind in ("users", "pages")
            }
        at = datetime.fromisoformat(meta["cut_at"]) if meta.get("cut_at") else None
        outcome = Outcome(meta["outcome_step"], frozenset(meta["masked_steps"]), at)
        return cls(
            int(meta["version"]),
            outcome,
            kinds["users"],
            kinds["pages"],
            {k: int(v) for k, v in meta.get("fitted", {}).items()},
            dict(meta.get("collections") or {}),
        )


def model_versions(model_dir: Path) -> list[int]:
    """Versions with a complete model (json and npz), any format: numbers are never reused."""
    if not model_dir.is_dir():
        return []
    found = (_MODEL_FILE.match(p.name) for p in model_dir.iterdir())
    return sorted(
        int(m.group(1)) for m in found if m and (model_dir / m.group(0)).with_suffix(".npz").exists()
    )


def latest_version(model_dir: Path) -> int | None:
    versions = model_versions(model_dir)
    return versions[-1] if versions else None


def prune_models(model_dir: Path, keep: Iterable[int], below: int) -> list[int]:
    """Delete the files of every model version under ``below`` that is not in ``keep``; the versions
    removed, ascending. ``below``: the version just switched to. Versions at or above it are never
    touched (another embed, beside a Milvus server, may be building one). A version's json goes first,
    so a half-removed model is never taken for a complete one (``model_versions`` wants both)."""
    if not model_dir.is_dir():
        return []
    kept = set(keep)
    doomed: dict[int, list[Path]] = {}
    for path in model_dir.iterdir():
        match = _ANY_MODEL_FILE.match(path.name)
        if match and (version := int(match.group(1))) < below and version not in kept:
            doomed.setdefault(version, []).append(path)
    for _, paths in sorted(doomed.items()):
        for path in sorted(paths, key=lambda p: not p.name.endswith(".json")):  # the json first
            path.unlink(missing_ok=True)
    return sorted(doomed)
