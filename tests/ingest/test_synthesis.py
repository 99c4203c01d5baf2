"""Synthesis as a pure function: determinism, structure of the documents, and a sentiment signal."""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from datetime import date, timedelta

import numpy as np
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from gateway.ingest import hashed_random as hr
from gateway.ingest.csv_files import UserRow
from gateway.ingest.page_catalogue import FEEDBACK_TEXTS, SEARCH_TEXTS, elements_for, feedback_texts
from gateway.ingest.synthesis import DEFAULT_VISIT_DATE, Synthesised, SynthesisPlan, synthesise, visit_order

STEPS = ("home", "search", "payment", "confirmation")
PLAN = SynthesisPlan(STEPS, "confirmation", seed=42)


def _population(n: int) -> tuple[list[UserRow], dict[int, set[str]]]:
    """Users 1..n: user u reaches the first 1 + u % 4 steps; every third user is on mobile."""
    users = [
        UserRow(
            uid,
            date(2015, 1, 1) + timedelta(days=uid % 120),
            "mobile" if uid % 3 == 0 else "desktop",
            "male" if uid % 2 else "female",
            {},
        )
        for uid in range(1, n + 1)
    ]
    return users, {uid: set(STEPS[: 1 + uid % 4]) for uid in range(1, n + 1)}


def _by_user(out: Synthesised) -> dict[int, tuple[list[dict], list[dict], list[dict]]]:
    grouped: dict[int, tuple[list[dict], list[dict], list[dict]]] = defaultdict(lambda: ([], [], []))
    for index, docs in enumerate((out.sessions, out.visits, out.interactions)):
        for doc in docs:
            grouped[doc["user_id"]][index].append(doc)
    return dict(grouped)


def test_a_users_documents_do_not_depend_on_the_batch() -> None:
    users, reached = _population(40)
    together = _by_user(synthesise(users, reached, PLAN))
    alone = {}
    for user in reversed(users):
        alone.update(_by_user(synthesise([user], reached, PLAN)))
    assert together == alone
    assert _by_user(synthesise(users, reached, PLAN)) == together


def test_the_seed_changes_the_history_but_not_the_pages() -> None:
    users, reached = _population(40)
    a = synthesise(users, reached, PLAN)
    b = synthesise(users, reached, SynthesisPlan(STEPS, "confirmation", seed=43))
    assert [v["timestamp"] for v in a.visits] != [v["timestamp"] for v in b.visits]
    assert {(v["user_id"], v["page_type"]) for v in a.visits} == {
        (v["user_id"], v["page_type"]) for v in b.visits
    }


def test_users_without_pages_get_nothing() -> None:
    user = UserRow(7, date(2015, 2, 1), "desktop", "male", {})
    out = synthesise([user], {7: {"unknown_page"}}, PLAN)
    assert (out.sessions, out.visits, out.interactions) == ([], [], [])
    assert synthesise([user], {}, PLAN) == Synthesised()


def test_sessions_visits_and_interactions_fit_together() -> None:
    users, reached = _population(600)
    out = synthesise(users, reached, PLAN)
    user_of = {u.user_id: u for u in users}
    names = {page: {e.name: e.kind for e in elements_for(page)} for page in STEPS}
    for uid, (sessions, visits, interactions) in _by_user(out).items():
        user = user_of[uid]
        path = [p for p in STEPS if p in reached[uid]]
        assert len(sessions) in (1, 2)
        assert sessions[-1]["pages_visited"] == path  # the last session walks the whole path
        if len(sessions) == 2:
            browse = sessions[0]["pages_visited"]
            # A prefix, never into the last step: only the full session converts.
            assert browse == path[: len(browse)] and "confirmation" not in browse
            assert sessions[1]["start_time"] - sessions[0]["end_time"] >= timedelta(minutes=30)
        assert [s["session_id"] for s in sessions] == [f"ses-{uid}-{n}" for n in range(len(sessions))]
        for session in sessions:
            assert session["converted"] == ("confirmation" in session["pages_visited"])
            assert (session["conversion_value"] > 0) == session["converted"]
            assert session["device"] == user.device
        # Visits: one after the other, on the user's day, each inside its session.
        ordered = sorted(visits, key=lambda v: v["timestamp"])
        assert ordered == visits
        for before, after in itertools.pairwise(ordered):
            assert after["timestamp"] >= before["timestamp"] + timedelta(seconds=before["duration"])
        assert all(v["timestamp"].date() == user.date for v in visits)
        assert all(3.0 <= v["duration"] <= 900.0 for v in visits)
        assert sum(len(s["pages_visited"]) for s in sessions) == len(visits)
        assert sum(s["total_interactions"] for s in sessions) == len(interactions)
        # Interactions: 2-4 per visit, inside it, on elements of that page.
        per_visit = Counter(i["event_id"].rsplit("-", 1)[0].replace("int-", "vis-", 1) for i in interactions)
        assert set(per_visit) == {v["event_id"] for v in visits}
        assert set(per_visit.values()) <= {2, 3, 4}
        visit_of = {v["event_id"]: v for v in visits}
        width = 390 if user.device == "mobile" else 1440
        for item in interactions:
            visit = visit_of[item["event_id"].rsplit("-", 1)[0].replace("int-", "vis-", 1)]
            assert item["session_id"] == visit["session_id"] and item["page_type"] == visit["page_type"]
            start = visit["timestamp"]
            assert start < item["timestamp"] < start + timedelta(seconds=visit["duration"])
            assert names[item["page_type"]][item["element"]] == item["interaction_type"]
            assert 0 <= item["coordinates"]["x"] <= width and item["coordinates"]["y"] >= 0
            if item["interaction_type"] == "form":
                assert isinstance(item["value"], str) and item["value"]
            else:
                assert item["value"] is None
        search_visits = [v for v in visits if v["page_type"] == "search"]
        for visit in search_visits:
            first = next(
                i for i in interactions if i["event_id"] == visit["event_id"].replace("vis-", "int-") + "-0"
            )
            assert first["element"] == "search_input"
            assert first["value"] in {t for texts in SEARCH_TEXTS.values() for t in texts}


def test_timestamps_are_whole_milliseconds() -> None:
    users, reached = _population(50)
    out = synthesise(users, reached, PLAN)
    stamps = [d["timestamp"] for d in out.visits + out.interactions]
    stamps += [s[k] for s in out.sessions for k in ("start_time", "end_time")]
    assert all(t.microsecond % 1000 == 0 for t in stamps)


def test_shape_of_the_population() -> None:
    users, reached = _population(6000)
    out = synthesise(users, reached, PLAN)
    sessions_per_user = Counter(s["user_id"] for s in out.sessions)
    # Users reaching only the last step never split; here everyone reaches home first, so all may.
    share_two = sum(1 for n in sessions_per_user.values() if n == 2) / len(users)
    assert 0.27 < share_two < 0.33
    per_page: dict[str, list[float]] = defaultdict(list)
    for visit in out.visits:
        per_page[visit["page_type"]].append(visit["duration"])
    # Log-normal durations: the median sits at the page's typical time.
    assert 21 < statistics.median(per_page["home"]) < 29
    assert 105 < statistics.median(per_page["payment"]) < 135
    assert 2.8 < len(out.interactions) / len(out.visits) < 3.2
    kinds = Counter(i["interaction_type"] for i in out.interactions)
    assert set(kinds) == {"click", "scroll", "hover", "form"}


def test_sessions_on_the_default_date_when_the_user_has_none() -> None:
    user = UserRow(5, None, None, None, {})
    out = synthesise([user], {5: {"home", "search"}}, PLAN)
    assert {v["timestamp"].date() for v in out.visits} == {DEFAULT_VISIT_DATE}
    assert out.visits[0]["device"] is None


def test_pages_outside_the_catalogue_get_generic_elements() -> None:
    plan = SynthesisPlan(
        visit_order(("home", "wishlist"), ["home", "search", "wishlist"]), "wishlist", seed=1
    )
    assert plan.visit_order == ("home", "wishlist", "search")
    users = [UserRow(uid, date(2015, 3, 1), "desktop", "male", {}) for uid in range(1, 30)]
    out = synthesise(users, {u.user_id: {"home", "wishlist", "search"} for u in users}, plan)
    assert {tuple(s["pages_visited"]) for s in out.sessions if s["converted"]} == {
        ("home", "wishlist", "search")
    }
    wishlist = {i["element"] for i in out.interactions if i["page_type"] == "wishlist"}
    assert wishlist and wishlist <= {e.name for e in elements_for("wishlist")}


def test_catalogue_wording_reads_as_its_mood() -> None:
    analyzer = SentimentIntensityAnalyzer()
    for page in (*FEEDBACK_TEXTS, "wishlist"):
        for text in feedback_texts(page, "positive"):
            assert analyzer.polarity_scores(text)["compound"] > 0.05, text
        for text in feedback_texts(page, "negative"):
            assert analyzer.polarity_scores(text)["compound"] < -0.05, text
    for text in SEARCH_TEXTS["positive"]:
        assert analyzer.polarity_scores(text)["compound"] > 0.05, text
    for text in SEARCH_TEXTS["negative"]:
        assert analyzer.polarity_scores(text)["compound"] < -0.05, text


def test_intent_shows_before_the_outcome_and_browsing_does_not_tell_the_depth() -> None:
    users, reached = _population(8000)
    out = synthesise(users, reached, PLAN)
    depth = {uid: len(pages) for uid, pages in reached.items()}
    home = defaultdict(list)
    for visit in out.visits:
        if visit["page_type"] == "home":
            home[depth[visit["user_id"]]].append(visit["duration"])
    medians = [statistics.median(home[d]) for d in (1, 2, 3, 4)]
    assert medians == sorted(medians) and medians[3] > 1.25 * medians[0]  # deeper users dwell longer
    first = {s["user_id"]: s for s in reversed(out.sessions)}  # each user's first session
    two = {s["user_id"] for s in out.sessions if s["session_id"].endswith("-1")}
    # Users going to payment: some browsed as far as payment already, some stopped earlier.
    at_payment = [len(first[u]["pages_visited"]) for u in two if depth[u] >= 3]
    assert {1, 2, 3} <= set(at_payment)


def test_feedback_sentiment_follows_how_the_visit_went() -> None:
    users, reached = _population(4000)
    out = synthesise(users, reached, PLAN)
    analyzer = SentimentIntensityAnalyzer()
    converted = {s["session_id"] for s in out.sessions if s["converted"]}
    last_session = {s["user_id"]: s for s in out.sessions}  # sessions come in order per user
    left_on_payment = {
        s["session_id"]
        for s in last_session.values()
        if s["pages_visited"][-1] == "payment" and not s["converted"]
    }
    happy, unhappy = [], []
    for item in out.interactions:
        if item["element"] == "payment_feedback":
            score = analyzer.polarity_scores(item["value"])["compound"]
            if item["session_id"] in converted:
                happy.append(score)
            elif item["session_id"] in left_on_payment:
                unhappy.append(score)
    assert len(happy) > 30 and len(unhappy) > 30
    assert statistics.fmean(happy) > 0.2
    assert statistics.fmean(unhappy) < -0.2


def test_hashed_uniforms_are_uniform_and_pure() -> None:
    keys = hr.user_keys(7, np.arange(100_000))
    draws = hr.uniform(keys, 3)
    assert draws.min() >= 0.0 and draws.max() < 1.0
    assert abs(draws.mean() - 0.5) < 0.01
    assert np.histogram(draws, bins=10, range=(0, 1))[0].min() > 9_500
    assert np.array_equal(hr.uniform(hr.user_keys(7, np.arange(100_000)), 3), draws)
    assert abs(np.corrcoef(draws, hr.uniform(keys, 4))[0, 1]) < 0.01  # streams are independent
    assert not np.array_equal(hr.uniform(hr.user_keys(8, np.arange(100_000)), 3), draws)
    normal = hr.standard_normal(keys, 10)
    assert abs(normal.mean()) < 0.02 and abs(normal.std() - 1) < 0.02


@pytest.mark.parametrize("seed", [-1, 0, 2**70])
def test_any_integer_seed_works(seed: int) -> None:
    users, reached = _population(5)
    out = synthesise(users, reached, SynthesisPlan(STEPS, "confirmation", seed=seed))
    assert len(out.sessions) >= 5


def test_only_typed_form_values_are_marked_free_text() -> None:
    # Issue 9, item 8: 587 of 894 payment "texts" were select/promo values ("visa", "FREESHIP",
    # "standard"), which sentiment then scored as if someone had written them.
    from gateway.ingest.page_catalogue import FEEDBACK_TEXTS, RATING_BY_MOOD, elements_for

    users, reached = _population(600)
    out = synthesise(users, reached, PLAN)
    typed = {t for texts in SEARCH_TEXTS.values() for t in texts}
    typed |= {t for moods in FEEDBACK_TEXTS.values() for texts in moods.values() for t in texts}
    choices = {v for page in PLAN.visit_order for e in elements_for(page) for v in e.values}
    choices |= {v for values in RATING_BY_MOOD.values() for v in values}
    assert typed.isdisjoint(choices)
    by_flag: dict[bool, set[str]] = defaultdict(set)
    for item in out.interactions:
        assert item["free_text"] is (item["interaction_type"] == "form" and item["value"] in typed)
        by_flag[item["free_text"]].add(item["value"])
    assert by_flag[True] and by_flag[True] <= typed
    assert {"visa", "FREESHIP", "standard", "5"} <= by_flag[False]
