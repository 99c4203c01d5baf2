"""The pre-outcome featuriser (events, tokens, feature space) and the fitted model, on hand-made and
synthesised journeys."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from gateway.embeddings.events import Outcome, UserEvents, cutoff, pre_outcome, reached
from gateway.embeddings.featurise import Featurised
from gateway.embeddings.model import BehaviourModel, latest_version
from gateway.embeddings.pca import Pca, covariance
from gateway.embeddings.space import FeatureSpace, SparseRows
from gateway.embeddings.tokens import tokenise
from gateway.errors import BadInput
from tests.analytics.journeys import STEPS, Journeys, Page, synthesised, varied_journeys

T0 = datetime(2015, 1, 5, 10, 0)  # a Monday
OUTCOME = Outcome.of_funnel(STEPS)


def _event(kind: str, page: str, at: datetime, n: int, **extra: object) -> dict:
    return {
        "event_id": f"e{n}",
        "session_id": extra.pop("session", "s1"),
        "page_type": page,
        "interaction_type": kind,
        "element": extra.pop("element", f"{page}-{kind}"),
        "timestamp": at,
        "coordinates": {"x": 1, "y": extra.pop("y", 0)},
        "value": extra.pop("value", None),
        "free_text": extra.pop("free_text", False),
    }


def _visit(page: str, at: datetime, seconds: float, session: str = "s1") -> dict:
    return {"session_id": session, "page_type": page, "timestamp": at, "duration": seconds}


def test_tokens_by_hand():
    t = T0
    visits = [
        _visit("home", t, 25.0),
        _visit("search", t + timedelta(seconds=40), 75.0),
        _visit("home", t + timedelta(hours=2), 8.0, session="s2"),
    ]
    interactions = [
        _event("click", "home", t + timedelta(seconds=5), 1),
        _event("scroll", "home", t + timedelta(seconds=9), 2, y=1000),
        _event(
            "form",
            "search",
            t + timedelta(seconds=45),
            3,
            element="search_input",
            value="Red shoes",
            free_text=True,
        ),
        _event("form", "search", t + timedelta(seconds=60), 4, element="size", value="M"),
    ]
    user = {"device": "mobile", "sex": None}
    tokens = tokenise(UserEvents(7, user, visits, interactions))
    got = tokens.user
    log = math.log1p
    assert got["pv:home"] == log(2) and got["pv:search"] == log(1)
    assert got["dw:home:0"] == log(1) and got["dw:home:1"] == log(1)  # 8 s (< 10) and 25 s (10..30)
    assert got["dt:home"] == pytest.approx(log(33.0)) and got["dt:search"] == pytest.approx(log(75.0))
    assert got["it:home:click"] == log(1) and got["el:search:size"] == log(1)
    assert got["ib:home:click>scroll"] == log(1) and got["ib:search:form>form"] == log(1)
    assert got["sy:home:2"] == log(1)  # 1000 px: between 900 and 1500
    assert got["fv:size=M"] == log(1)  # a picked value is a choice, never words or a mood
    assert got["tx:search:neu"] == log(1) and got["tw:red"] == log(1) and got["tw:shoes"] == log(1)
    assert got["ng:^>home"] == log(2) and got["ng:home>search>$"] == log(1) and got["ng:^>home>$"] == log(1)
    assert got["ns:2"] == log(1) and got["gap:2"] == log(1)  # two sessions 2 h apart
    assert got["hr:10"] == got["wd:0"] == got["mo:1"] == got["dev:mobile"] == got["sex:?"] == log(1)
    # Per page: the same blocks without the page in the name, and counts for the row's metadata.
    assert tokens.pages["search"]["fv:size=M"] == log(1) and tokens.pages["search"]["tw:red"] == log(1)
    assert tokens.pages["home"]["hr:10"] == log(1) and "hr:12" not in tokens.pages["home"]
    assert tokens.page_counts == {"home": (2, 2, 33.0), "search": (1, 2, 75.0)}


def test_the_cut_drops_the_outcome_and_everything_after_it_and_can_cut_earlier():
    t = T0
    visits = [
        _visit("home", t, 20.0),
        _visit("confirmation", t + timedelta(minutes=5), 10.0),
        _visit("home", t + timedelta(minutes=9), 10.0),
    ]
    interactions = [
        _event("click", "home", t + timedelta(seconds=3), 1),
        _event("click", "home", t + timedelta(minutes=5), 2),  # at the cutoff: dropped
        _event("form", "confirmation", t + timedelta(minutes=6), 3),
    ]
    events = UserEvents(1, {}, visits, interactions)
    assert cutoff(events, OUTCOME) == t + timedelta(minutes=5)
    cut = pre_outcome(events, OUTCOME)
    assert [v["page_type"] for v in cut.visits] == ["home"] and len(cut.interactions) == 1
    assert reached(events, OUTCOME) and not reached(cut, OUTCOME)
    at_two = pre_outcome(events, Outcome.of_funnel(STEPS, at=t + timedelta(seconds=2)))
    assert len(at_two.visits) == 1 and at_two.interactions == []
    payment = Outcome.of_funnel(STEPS, "payment")
    assert payment.masked == {"payment", "confirmation"}
    with pytest.raises(BadInput, match="not a step"):
        Outcome.of_funnel(STEPS, "checkout")
    with pytest.raises(BadInput, match="ingest"):
        Outcome.of_funnel([])


def test_featurised_rows_labels_and_page_rows():
    journeys = Journeys()
    journeys.add(1, [Page("home"), Page("search"), Page("payment"), Page("confirmation")], device="mobile")
    journeys.add(2, [Page("home", 2)], device=None)
    data = Featurised.of(OUTCOME, journeys.events())
    assert data.user_ids == [1, 2] and data.converted == [True, False] and data.devices == ["mobile", None]
    # The outcome page has no (user, page) row: it is never seen.
    assert [(r.user_id, r.page_type, r.visits) for r in data.page_rows] == [
        (1, "home", 1),
        (1, "payment", 1),
        (1, "search", 1),
        (2, "home", 2),
    ]
    assert not [t for t in data.users.index if "confirmation" in t]


def test_feature_space_vocabulary_and_block_balanced_scale_by_hand():
    rows = SparseRows.of([{"a:x": 1.0, "b:y": 2.0, "b:z": 1.0}, {"a:x": 3.0, "b:y": 2.0}, {"b:z": 1.0}])
    space = FeatureSpace.fit(rows, min_rows=2)  # 1 % of 3 rows: every token needs one row... at most 2
    assert space.names == ("a:x", "b:y", "b:z")
    raw = space.raw(rows)
    np.testing.assert_array_equal(raw, [[1, 2, 1], [3, 2, 0], [0, 0, 1]])
    np.testing.assert_allclose(space.mean, raw.mean(axis=0))
    # Block "b" has two columns: each is scaled by its std times sqrt(2), so the block's total variance
    # equals block "a"'s.
    np.testing.assert_allclose(space.scale, raw.std(axis=0) * [1.0, math.sqrt(2), math.sqrt(2)])
    z = space.standardised(rows)
    assert z[:, 0].var() == pytest.approx(1.0) and z[:, 1:].var(axis=0).sum() == pytest.approx(1.0)
    unknown = SparseRows.of([{"a:x": 3.0, "c:new": 5.0}])  # a token the model never saw is ignored
    np.testing.assert_array_equal(space.raw(unknown), [[3.0, 0.0, 0.0]])


def test_pca_keeps_only_directions_with_variance_never_padding():
    x = np.array([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]])  # one direction, hand-computed
    pca = Pca.fit(covariance([x], 2))
    assert pca.dim == 1 and pca.explained == pytest.approx(1.0)
    np.testing.assert_allclose(pca.components[:, 0], [1 / math.sqrt(2), 1 / math.sqrt(2)])
    v = pca.apply(x)
    assert v.shape == (3, 1) and v[0, 0] == pytest.approx(-1.0) and v[2, 0] == pytest.approx(1.0)
    assert v[1, 0] == 1.0  # the centre has no direction: the fixed unit vector


@pytest.fixture(scope="module")
def population() -> Featurised:
    return Featurised.of(OUTCOME, synthesised(1500, seed=3).events())


def test_a_real_population_fills_128_dimensions_with_every_one_used(population: Featurised):
    model = BehaviourModel.fit(population)
    assert model.users.dim == 128 and len(model.users.space.names) > 128
    vectors = model.users.apply(population.users)
    assert vectors.shape == (1500, 128) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (vectors.std(axis=0) > 1e-3).all()  # no dead (padded) dimension
    assert 0.8 < model.users.pca.explained < 1.0
    assert not [name for name in model.users.space.names if "confirmation" in name]
    assert model.pages.dim <= 128 and model.fitted == {
        "users": 1500,
        "pages": len(population.page_rows),
        "converted": sum(population.converted),
    }


def test_identical_journeys_get_identical_vectors_and_the_fit_is_deterministic():
    journeys = varied_journeys(30)
    twin = [Page("home", 2, 40.0, 3, 2, 1), Page("search", 1, 90.0, 4, 1, 0, 1)]
    journeys.add(101, twin, start=T0)
    journeys.add(102, twin, start=T0 + timedelta(days=7))  # same weekday, hour and month
    journeys.add(103, twin, start=T0, device="mobile")
    data = Featurised.of(OUTCOME, journeys.events())
    vectors = BehaviourModel.fit(data).users.apply(data.users)
    row = {uid: i for i, uid in enumerate(data.user_ids)}
    np.testing.assert_allclose(vectors[row[101]], vectors[row[102]], atol=1e-6)
    assert float(vectors[row[101]] @ vectors[row[103]]) < 0.999  # another device, another journey
    np.testing.assert_array_equal(vectors, BehaviourModel.fit(data).users.apply(data.users))


def test_the_model_is_saved_versioned_with_its_features_and_reloads_to_the_same_vectors(
    tmp_path: Path, population: Featurised
):
    model = BehaviourModel.fit(population, version=3)
    path = model.save(tmp_path)
    assert path.name == "behaviour-v0003.json" and latest_version(tmp_path) == 3
    meta = json.loads(path.read_text())
    assert meta["format"] == 2 and meta["kind"] == "pre-outcome" and meta["outcome_step"] == "confirmation"
    assert meta["masked_steps"] == ["confirmation"]
    assert meta["users"]["dim"] == 128 and meta["users"]["names"] == list(model.users.space.names)
    assert meta["users"]["explained_variance"] == pytest.approx(model.users.pca.explained, abs=1e-4)
    assert meta["users"]["explained_at"]["128"] == meta["users"]["explained_variance"]
    loaded = BehaviourModel.load(tmp_path)
    np.testing.assert_array_equal(loaded.users.apply(population.users), model.users.apply(population.users))
    np.testing.assert_array_equal(loaded.pages.apply(population.pages), model.pages.apply(population.pages))
    assert loaded.outcome == model.outcome


def test_loading_without_a_model_or_another_format_fails_clearly(tmp_path: Path, population: Featurised):
    with pytest.raises(FileNotFoundError, match="funnelgate embed"):
        BehaviourModel.load(tmp_path)
    path = BehaviourModel.fit(population).save(tmp_path)
    path.write_text(json.dumps({**json.loads(path.read_text()), "format": 1}))  # main's padded model
    with pytest.raises(ValueError, match="format 1"):
        BehaviourModel.load(tmp_path)
