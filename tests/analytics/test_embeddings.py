"""The behaviour featuriser and its fitted 128-d model, on hand-made journeys."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from gateway.embeddings.features import (
    FeatureSpace,
    engagement_score,
    page_rows_and_features,
    steps_reached,
    user_features,
    user_metadata,
)
from gateway.embeddings.model import EMBED_DIM, BehaviourModel, Projection, latest_version
from tests.analytics.journeys import Journeys, Page, varied_journeys

MONDAY_10AM = datetime(2015, 1, 5, 10, 0)


def _with_twins() -> Journeys:
    """Varied users 1..30, plus users 101 and 102 with the same journey a week apart (same weekday and
    hour), and user 103 with the same pages on a phone."""
    journeys = varied_journeys(30)
    twin = [Page("home", 2, 40.0, 3, 2, 1), Page("search", 1, 90.0, 4, 1, 0, 1)]
    journeys.add(101, twin, start=MONDAY_10AM)
    journeys.add(102, twin, start=MONDAY_10AM + timedelta(days=7))
    journeys.add(103, twin, start=MONDAY_10AM, device="Mobile")
    return journeys


def test_identical_journeys_get_identical_unit_vectors_of_128_dims():
    data = _with_twins().data()
    model = BehaviourModel.fit(data, seed=0)
    vectors = model.embed_users(data)
    row = {uid: i for i, uid in enumerate(data.user_ids)}
    assert vectors.shape == (33, EMBED_DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[row[101]], vectors[row[102]], atol=1e-6)
    # A different device is a different journey.
    assert float(vectors[row[101]] @ vectors[row[103]]) < 0.999


def test_the_fit_is_deterministic_for_a_seed():
    data = _with_twins().data()
    first = BehaviourModel.fit(data, seed=7).embed_users(data)
    second = BehaviourModel.fit(data, seed=7).embed_users(data)
    np.testing.assert_array_equal(first, second)


def test_a_sampled_fit_depends_only_on_the_seed():
    x = np.random.default_rng(3).normal(size=(500, 20)) * np.arange(1, 21)
    a = Projection.fit(x, dim=8, seed=1, max_rows=100)
    b = Projection.fit(x, dim=8, seed=1, max_rows=100)
    c = Projection.fit(x, dim=8, seed=2, max_rows=100)
    np.testing.assert_array_equal(a.components, b.components)
    assert not np.allclose(a.mean, c.mean)  # another sample of rows


def test_persisted_model_reloads_to_the_same_vectors(tmp_path: Path):
    data = _with_twins().data()
    model = BehaviourModel.fit(data, seed=0, version=1)
    model.save(tmp_path)
    BehaviourModel.fit(data, seed=1, version=2).save(tmp_path)
    assert latest_version(tmp_path) == 2
    loaded = BehaviourModel.load(tmp_path, version=1)
    assert loaded.version == 1 and loaded.space == model.space
    np.testing.assert_array_equal(loaded.embed_users(data), model.embed_users(data))
    rows, pages = loaded.embed_pages(data)
    assert len(rows) == sum(len(v) for v in data.activity.values())  # one per (user, page type)
    np.testing.assert_array_equal(pages, model.embed_pages(data)[1])
    meta = json.loads((tmp_path / "behaviour-v0001.json").read_text())
    assert meta["version"] == 1 and meta["dim"] == EMBED_DIM
    assert len(meta["user_features"]) == model.users.mean.shape[0]


def test_loading_without_a_model_or_with_another_format_fails_clearly(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="funnelgate embed"):
        BehaviourModel.load(tmp_path)
    data = _with_twins().data()
    path = BehaviourModel.fit(data).save(tmp_path)
    meta = json.loads(path.read_text())
    path.write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(ValueError, match="format 99"):
        BehaviourModel.load(tmp_path)


def test_fewer_informative_directions_than_128_are_padded_with_zeros():
    # Three points on one line: one direction of variance, hand-computed.
    x = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    proj = Projection.fit(x, dim=EMBED_DIM)
    assert proj.informative == 1
    np.testing.assert_allclose(proj.components[:, 0], [1 / math.sqrt(2), 1 / math.sqrt(2)], atol=1e-9)
    assert not proj.components[:, 1:].any()
    v = proj.apply(x)
    assert v.shape == (3, EMBED_DIM)
    assert v[0, 0] == pytest.approx(-1.0) and v[2, 0] == pytest.approx(1.0)
    assert not v[0, 1:].any() and not v[2, 1:].any()
    # The centre point has no direction: it gets the fixed last unit vector.
    assert v[1, -1] == 1.0 and not v[1, :-1].any()


def test_raw_features_match_hand_computed_values():
    journeys = Journeys()
    journeys.add(1, [Page("home", 3, 120.0, 2, 1, 1, 0), Page("confirmation", 1, 20.0, 0, 0, 0, 0)])
    journeys.add(2, [Page("home", 1, 10.0)], device=None, sex="Male")
    data = journeys.data()
    space = FeatureSpace.from_data(data)
    assert space.pages == ("confirmation", "home")
    assert space.devices == ("Desktop",) and space.sexes == ("Female", "Male")
    x = user_features(space, data)
    col = {name: k for k, name in enumerate(space.user_feature_names())}
    assert x[0, col["page:home:visits"]] == pytest.approx(math.log1p(3))
    assert x[0, col["page:home:duration"]] == pytest.approx(math.log1p(120))
    assert x[0, col["page:home:clicks"]] == pytest.approx(math.log1p(2))
    assert x[0, col["page:confirmation:visited"]] == 1.0 and x[1, col["page:confirmation:visited"]] == 0.0
    # home visited but not search: one step of four reached, whatever came later.
    assert x[0, col["steps_reached:1"]] == 1.0 and x[0, col["steps_reached_share"]] == 0.25
    assert x[1, col["device:?"]] == 1.0 and x[1, col["sex:Male"]] == 1.0
    assert x[0, col["interactions"]] == pytest.approx(math.log1p(4))
    assert x[0, col["first_hour_sin"]] == pytest.approx(math.sin(2 * math.pi * 10 / 24))
    assert x[0, col["first_weekday_cos"]] == pytest.approx(1.0)  # a Monday
    # One session home>confirmation: 3 bigrams + 2 trigrams spread over the hash buckets.
    hashed = [k for name, k in col.items() if name.startswith("path_hash:")]
    assert x[0, hashed].sum() == pytest.approx(5.0)


def test_steps_reached_engagement_and_metadata_by_hand():
    space = FeatureSpace(("home", "search"), (), (), ("home", "search", "payment"))
    assert steps_reached(space, {"home", "payment"}) == 1
    assert steps_reached(space, {"search", "payment"}) == 0
    assert steps_reached(space, {"home", "search", "payment"}) == 3
    row = {"clicks": 2, "scrolls": 1, "hovers": 1, "forms": 0, "total_duration": 120.0}
    assert engagement_score(row) == pytest.approx(round(math.log1p(4) + math.log1p(2.0), 4))
    journeys = Journeys()
    journeys.add(5, [Page("home"), Page("search"), Page("payment"), Page("confirmation")], device="Mobile")
    data = journeys.data()
    meta = user_metadata(data, FeatureSpace.from_data(data), 5, model_version=3)
    assert meta == {
        "user_id": 5,
        "device": "Mobile",
        "sex": "Female",
        "session_count": 1,
        "converted": True,
        "steps_reached": 4,
        "pages": ["confirmation", "home", "payment", "search"],
        "model_version": 3,
    }


def test_a_single_user_still_gets_a_unit_vector():
    journeys = Journeys()
    journeys.add(1, [Page("home")])
    data = journeys.data()
    model = BehaviourModel.fit(data)
    assert model.users.informative == 0
    vector = model.embed_users(data)[0]
    assert float(np.linalg.norm(vector)) == pytest.approx(1.0)


def test_page_rows_and_their_features_by_hand():
    journeys = Journeys()
    journeys.add(
        1, [Page("home", 2, 120.0, 3, 1, 0, 0), Page("search", 1, 30.0, 0, 0, 0, 0)], device="Mobile"
    )
    journeys.add(2, [Page("home", 1, 60.0, 1, 1, 1, 1)])
    data = journeys.data()
    space = FeatureSpace.from_data(data)
    rows, x = page_rows_and_features(space, data)
    assert [(r.user_id, r.page_type, r.page_index, r.interaction_count) for r in rows] == [
        (1, "home", 0, 4),
        (1, "search", 1, 0),
        (2, "home", 0, 4),
    ]
    assert rows[0].engagement_score == pytest.approx(round(math.log1p(4) + math.log1p(2.0), 4))
    col = {name: k for k, name in enumerate(space.page_feature_names())}
    assert x[0, col["duration_per_visit"]] == pytest.approx(math.log1p(60.0))
    assert x[0, col["share:clicks"]] == pytest.approx(0.75) and x[0, col["share:scrolls"]] == pytest.approx(
        0.25
    )
    assert x[1, col["share:clicks"]] == 0.0  # no interactions: no shares, not a division by zero
    assert x[0, col["interactions_per_visit"]] == pytest.approx(math.log1p(2.0))
    assert x[1, col["page:search"]] == 1.0 and x[1, col["page:home"]] == 0.0
    assert x[0, col["device:Mobile"]] == 1.0 and x[2, col["device:Desktop"]] == 1.0


def test_fit_transform_gives_what_the_fitted_model_gives():
    data = _with_twins().data()
    model, users, rows, pages = BehaviourModel.fit_transform(data, seed=0)
    np.testing.assert_array_equal(users, model.embed_users(data))
    again_rows, again_pages = model.embed_pages(data)
    assert rows == again_rows
    np.testing.assert_array_equal(pages, again_pages)
    np.testing.assert_allclose(np.linalg.norm(pages, axis=1), 1.0, atol=1e-5)
