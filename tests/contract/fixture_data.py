"""The contract fixture: ten users, their sessions, visits and interactions, and every expected answer
derived BY HAND from them (the comments show the arithmetic). Nothing here calls the code under test.

Funnel under test: STEPS = home(1) -> search(2) -> payment(3) -> confirmation(4); "product" is an
unlisted page. WINDOW = 600 s. Users (device, sex, users.date):

    id   device   sex     date        story
    10   desktop  male    2015-01-05  full funnel, repeated home visits, a product page in between
    20   mobile   female  2015-01-06  home and search at the SAME second (tie counts as ordered)
    30   desktop  female  2015-01-12  skips search: home -> payment -> confirmation
    40   mobile   male    2015-01-20  out of order: search, home, search, payment (ordered uses 2nd search)
    50   desktop  None    2015-02-02  window edge: search at anchor+600 s exactly, payment at +601 s
    60   None     female  2015-02-03  strict breaker: home, search, home, payment, confirmation
    70   mobile   female  2015-02-14  no sessions, no visits
    80   desktop  male    2015-02-19  reverse order: payment (Feb 19 23:58), then search, home, confirmation
                                      on Feb 20 -- only UNORDERED completes it, from t0 on the previous day
    90   mobile   male    2015-01-31  crosses midnight into February: home Jan 31 23:59, search+payment Feb 1
    100  desktop  female  None        never visits home (search/product only), four sessions

Every visit's/session's device equals its user's device, so "device" is unambiguous everywhere.
Timestamps are whole seconds (MongoDB keeps milliseconds only).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gateway.models import FunnelStepResult

STEPS = ("home", "search", "payment", "confirmation")
WINDOW = 600


def fresh(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deep copies to hand to a store: a driver may add ``_id`` to what it is given, and the originals
    here are the expectations."""
    return copy.deepcopy(documents)


def at(stamp: str) -> datetime:
    """'2015-01-05 10:00:00' -> naive UTC datetime."""
    return datetime.fromisoformat(stamp)


def day(iso: str) -> date:
    return date.fromisoformat(iso)


# --------------------------------------------------------------------------------------------------
# users
# --------------------------------------------------------------------------------------------------


def _user(user_id: int, device: str | None, sex: str | None, first: str | None, **attributes: Any) -> dict:
    return {
        "user_id": user_id,
        "device": device,
        "sex": sex,
        "date": day(first) if first else None,
        "attributes": attributes,
    }


USERS: list[dict[str, Any]] = [
    _user(10, "desktop", "male", "2015-01-05", source="seo", age=31),
    _user(20, "mobile", "female", "2015-01-06", source="ads"),
    _user(30, "desktop", "female", "2015-01-12"),
    _user(40, "mobile", "male", "2015-01-20", source="direct", age=45),
    _user(50, "desktop", None, "2015-02-02", source="seo"),
    _user(60, None, "female", "2015-02-03"),
    _user(70, "mobile", "female", "2015-02-14", source="ads"),
    _user(80, "desktop", "male", "2015-02-19"),
    _user(90, "mobile", "male", "2015-01-31", source="direct"),
    _user(100, "desktop", "female", None, source="seo"),
]
USER_BY_ID = {u["user_id"]: u for u in USERS}
DEVICE_OF = {u["user_id"]: u["device"] for u in USERS}

# --------------------------------------------------------------------------------------------------
# page visits (listed per user; event ids are chosen so that (timestamp, event_id) order differs from
# list order where it matters: v20-1/v20-2 tie, v100-6 listed before v100-5)
# --------------------------------------------------------------------------------------------------


def _visit(event_id: str, user_id: int, session_id: str, page: str, stamp: str, duration: float) -> dict:
    return {
        "event_id": event_id,
        "user_id": user_id,
        "session_id": session_id,
        "page_type": page,
        "timestamp": at(stamp),
        "duration": duration,
        "device": DEVICE_OF[user_id],
    }


VISITS: list[dict[str, Any]] = [
    # u10: home 30+15 = 45 s in total, search 40, payment 60, confirmation 10.
    _visit("v10-1", 10, "s10a", "home", "2015-01-05 10:00:00", 30.0),
    _visit("v10-2", 10, "s10a", "product", "2015-01-05 10:01:00", 20.0),
    _visit("v10-3", 10, "s10a", "home", "2015-01-05 10:02:00", 15.0),
    _visit("v10-4", 10, "s10a", "search", "2015-01-05 10:03:00", 40.0),
    _visit("v10-5", 10, "s10a", "payment", "2015-01-05 10:05:00", 60.0),
    _visit("v10-6", 10, "s10a", "confirmation", "2015-01-05 10:06:00", 10.0),
    # u20: home 09:00:00 (event v20-2) and search 09:00:00 (event v20-1) tie.
    _visit("v20-2", 20, "s20a", "home", "2015-01-06 09:00:00", 12.0),
    _visit("v20-1", 20, "s20a", "search", "2015-01-06 09:00:00", 8.0),
    _visit("v20-3", 20, "s20a", "product", "2015-01-06 09:05:00", 5.0),
    # u30: no search at all.
    _visit("v30-1", 30, "s30a", "home", "2015-01-12 14:00:00", 22.0),
    _visit("v30-2", 30, "s30a", "payment", "2015-01-12 14:10:00", 50.0),
    _visit("v30-3", 30, "s30a", "confirmation", "2015-01-12 14:12:00", 4.0),
    # u40: search 10+16 = 26 s in total.
    _visit("v40-1", 40, "s40a", "search", "2015-01-20 08:00:00", 10.0),
    _visit("v40-2", 40, "s40a", "home", "2015-01-20 08:05:00", 25.0),
    _visit("v40-3", 40, "s40a", "search", "2015-01-20 08:10:00", 16.0),
    _visit("v40-4", 40, "s40a", "payment", "2015-01-20 08:20:00", 33.0),
    # u50: anchor 11:00:00; 11:10:00 = anchor + 600 s; 11:10:01 = anchor + 601 s.
    _visit("v50-1", 50, "s50a", "home", "2015-02-02 11:00:00", 31.0),
    _visit("v50-2", 50, "s50a", "search", "2015-02-02 11:10:00", 21.0),
    _visit("v50-3", 50, "s50a", "payment", "2015-02-02 11:10:01", 41.0),
    _visit("v50-4", 50, "s50a", "confirmation", "2015-02-02 11:15:00", 7.0),
    # u60: home 10+14 = 24 s in total.
    _visit("v60-1", 60, "s60a", "home", "2015-02-03 16:00:00", 10.0),
    _visit("v60-2", 60, "s60a", "search", "2015-02-03 16:01:00", 6.0),
    _visit("v60-3", 60, "s60a", "home", "2015-02-03 16:02:00", 14.0),
    _visit("v60-4", 60, "s60a", "payment", "2015-02-03 16:03:00", 9.0),
    _visit("v60-5", 60, "s60a", "confirmation", "2015-02-03 16:04:00", 3.0),
    # u80: two sessions.
    _visit("v80-1", 80, "s80a", "payment", "2015-02-19 23:58:00", 44.0),
    _visit("v80-2", 80, "s80b", "search", "2015-02-20 13:02:00", 18.0),
    _visit("v80-3", 80, "s80b", "home", "2015-02-20 13:04:00", 11.0),
    _visit("v80-4", 80, "s80b", "confirmation", "2015-02-20 13:06:00", 2.0),
    # u90: two sessions, across midnight and a month boundary.
    _visit("v90-1", 90, "s90a", "home", "2015-01-31 23:59:00", 35.0),
    _visit("v90-2", 90, "s90b", "search", "2015-02-01 00:00:30", 19.0),
    _visit("v90-3", 90, "s90b", "payment", "2015-02-01 00:05:00", 27.0),
    # u100: never home; s100c and s100d start at the same second (session id breaks the tie).
    _visit("v100-1", 100, "s100a", "search", "2015-02-25 10:00:00", 15.0),
    _visit("v100-2", 100, "s100a", "product", "2015-02-25 10:01:00", 30.0),
    _visit("v100-3", 100, "s100b", "search", "2015-02-26 09:00:00", 12.0),
    _visit("v100-4", 100, "s100b", "product", "2015-02-26 09:00:40", 22.0),
    _visit("v100-6", 100, "s100d", "product", "2015-02-27 18:00:00", 4.0),
    _visit("v100-5", 100, "s100c", "product", "2015-02-27 18:00:00", 9.0),
]
VISIT_BY_ID = {v["event_id"]: v for v in VISITS}

# --------------------------------------------------------------------------------------------------
# sessions (duration = end - start in seconds, written next to each; listed with s100d before s100c)
# --------------------------------------------------------------------------------------------------


def _session(
    session_id: str,
    user_id: int,
    start: str,
    end: str,
    pages: list[str],
    interactions: int,
    converted: bool,
    value: float,
) -> dict:
    return {
        "session_id": session_id,
        "user_id": user_id,
        "start_time": at(start),
        "end_time": at(end),
        "device": DEVICE_OF[user_id],
        "pages_visited": pages,
        "total_interactions": interactions,
        "converted": converted,
        "conversion_value": value,
    }


SESSIONS: list[dict[str, Any]] = [
    _session(  # 370 s
        "s10a",
        10,
        "2015-01-05 10:00:00",
        "2015-01-05 10:06:10",
        ["home", "product", "home", "search", "payment", "confirmation"],
        4,
        True,
        120.5,
    ),
    _session(  # 305 s
        "s20a", 20, "2015-01-06 09:00:00", "2015-01-06 09:05:05", ["home", "search", "product"], 2, False, 0.0
    ),
    _session(  # 724 s
        "s30a",
        30,
        "2015-01-12 14:00:00",
        "2015-01-12 14:12:04",
        ["home", "payment", "confirmation"],
        1,
        True,
        80.0,
    ),
    _session(  # 1233 s
        "s40a",
        40,
        "2015-01-20 08:00:00",
        "2015-01-20 08:20:33",
        ["search", "home", "search", "payment"],
        3,
        False,
        0.0,
    ),
    _session(  # 907 s
        "s50a",
        50,
        "2015-02-02 11:00:00",
        "2015-02-02 11:15:07",
        ["home", "search", "payment", "confirmation"],
        3,
        True,
        45.25,
    ),
    _session(  # 243 s
        "s60a",
        60,
        "2015-02-03 16:00:00",
        "2015-02-03 16:04:03",
        ["home", "search", "home", "payment", "confirmation"],
        2,
        True,
        60.0,
    ),
    _session("s80a", 80, "2015-02-19 23:58:00", "2015-02-19 23:58:44", ["payment"], 0, False, 0.0),  # 44 s
    _session(  # 242 s
        "s80b",
        80,
        "2015-02-20 13:02:00",
        "2015-02-20 13:06:02",
        ["search", "home", "confirmation"],
        1,
        True,
        30.0,
    ),
    _session("s90a", 90, "2015-01-31 23:59:00", "2015-01-31 23:59:30", ["home"], 0, False, 0.0),  # 30 s
    _session(  # 297 s
        "s90b", 90, "2015-02-01 00:00:30", "2015-02-01 00:05:27", ["search", "payment"], 2, False, 0.0
    ),
    _session(  # 90 s
        "s100a", 100, "2015-02-25 10:00:00", "2015-02-25 10:01:30", ["search", "product"], 0, False, 0.0
    ),
    _session(  # 62 s
        "s100b", 100, "2015-02-26 09:00:00", "2015-02-26 09:01:02", ["search", "product"], 0, False, 0.0
    ),
    _session("s100d", 100, "2015-02-27 18:00:00", "2015-02-27 18:00:04", ["product"], 0, False, 0.0),  # 4 s
    _session("s100c", 100, "2015-02-27 18:00:00", "2015-02-27 18:00:09", ["product"], 0, False, 0.0),  # 9 s
]
SESSION_BY_ID = {s["session_id"]: s for s in SESSIONS}

# --------------------------------------------------------------------------------------------------
# interactions (i40-3 listed before i40-2 at the same second; i60-b listed before i60-a likewise)
# --------------------------------------------------------------------------------------------------


def _interaction(
    event_id: str,
    user_id: int,
    session_id: str,
    page: str,
    kind: str,
    element: str,
    stamp: str,
    x: int,
    y: int,
    value: str | None,
    free_text: bool | None = None,
) -> dict:
    return {
        "event_id": event_id,
        "user_id": user_id,
        "session_id": session_id,
        "page_type": page,
        "interaction_type": kind,
        "element": element,
        "timestamp": at(stamp),
        "coordinates": {"x": x, "y": y},
        "value": value,
        "free_text": kind == "form" if free_text is None else free_text,  # forms here are typed text
    }


INTERACTIONS: list[dict[str, Any]] = [
    _interaction("i10-1", 10, "s10a", "home", "click", "nav-search", "2015-01-05 10:00:10", 5, 5, None),
    _interaction("i10-2", 10, "s10a", "home", "scroll", "body", "2015-01-05 10:00:20", 0, 400, None),
    _interaction(
        "i10-3",
        10,
        "s10a",
        "search",
        "form",
        "search-box",
        "2015-01-05 10:03:05",
        100,
        20,
        "red running shoes",
    ),
    _interaction(
        "i10-4",
        10,
        "s10a",
        "payment",
        "form",
        "card-note",
        "2015-01-05 10:05:10",
        50,
        300,
        "please deliver fast",
    ),
    # a value picked from fixed choices (a select): a form with a value, but no free text
    _interaction(
        "i10-5", 10, "s10a", "payment", "form", "card-type", "2015-01-05 10:05:20", 50, 200, "visa", False
    ),
    _interaction(
        "i20-1", 20, "s20a", "search", "form", "search-box", "2015-01-06 09:00:02", 100, 20, "cheap laptop"
    ),
    _interaction("i20-2", 20, "s20a", "product", "hover", "img-1", "2015-01-06 09:05:01", 200, 200, None),
    # an empty form value: a form interaction, but no text
    _interaction("i30-1", 30, "s30a", "payment", "form", "card-note", "2015-01-12 14:10:05", 50, 300, ""),
    # a form without value, then a click WITH a value and a form at the same second
    _interaction("i40-1", 40, "s40a", "search", "form", "search-box", "2015-01-20 08:00:05", 100, 20, None),
    _interaction(
        "i40-3", 40, "s40a", "search", "form", "search-box", "2015-01-20 08:10:05", 100, 20, "blue jeans"
    ),
    _interaction(
        "i40-2", 40, "s40a", "search", "click", "result-3", "2015-01-20 08:10:05", 300, 150, "clicked"
    ),
    _interaction("i50-1", 50, "s50a", "home", "click", "banner", "2015-02-02 11:00:05", 10, 10, None),
    _interaction(
        "i50-2", 50, "s50a", "search", "form", "search-box", "2015-02-02 11:10:05", 100, 20, "gift ideas"
    ),
    # u50 never visited "product": this interaction has no (user, page) activity row
    _interaction("i50-3", 50, "s50a", "product", "click", "related", "2015-02-02 11:12:00", 40, 40, None),
    _interaction(
        "i60-b", 60, "s60a", "search", "form", "search-box", "2015-02-03 16:01:05", 100, 20, "phone case"
    ),
    _interaction(
        "i60-a", 60, "s60a", "search", "form", "feedback", "2015-02-03 16:01:05", 100, 90, "great selection"
    ),
    _interaction(
        "i80-1", 80, "s80b", "search", "form", "search-box", "2015-02-20 13:02:05", 100, 20, "hiking boots"
    ),
    _interaction(
        "i90-1",
        90,
        "s90b",
        "search",
        "form",
        "search-box",
        "2015-02-01 00:00:40",
        100,
        20,
        "late night snack",
    ),
    _interaction("i90-2", 90, "s90b", "payment", "scroll", "body", "2015-02-01 00:05:10", 0, 600, None),
]
INTERACTION_BY_ID = {i["event_id"]: i for i in INTERACTIONS}

# --------------------------------------------------------------------------------------------------
# pre-computed funnel_analytics rows (listed out of (date, device, step_index) order on purpose)
# --------------------------------------------------------------------------------------------------


def _fa(
    iso: str, device: str, step: str, index: int, users: int, conv: float, drop: float, avg: float | None
) -> dict:
    return {
        "date": day(iso),
        "device": device,
        "funnel_step": step,
        "step_index": index,
        "unique_users": users,
        "conversion_rate": conv,
        "drop_off_rate": drop,
        "avg_time_spent": avg,
        # one day's median from the first step (0 at step 1, like every ORDERED funnel); None without users
        "median_time_to_convert": (30.0 * index if users else None),
    }


FA_0105_DESKTOP_SEARCH = _fa("2015-01-05", "desktop", "search", 1, 1, 1.0, 0.0, 40.0)
FA_0105_DESKTOP_HOME = _fa("2015-01-05", "desktop", "home", 0, 1, 1.0, 0.0, 45.0)
FA_0105_MOBILE_HOME = _fa("2015-01-05", "mobile", "home", 0, 0, 0.0, 0.0, None)
FA_0106_DESKTOP_SEARCH = _fa("2015-01-06", "desktop", "search", 1, 0, 0.0, 1.0, None)
FA_0106_DESKTOP_HOME = _fa("2015-01-06", "desktop", "home", 0, 2, 1.0, 0.0, 17.5)
FA_0107_DESKTOP_HOME = _fa("2015-01-07", "desktop", "home", 0, 3, 1.0, 0.0, 12.25)

FUNNEL_ANALYTICS: list[dict[str, Any]] = [
    FA_0106_DESKTOP_SEARCH,
    FA_0105_DESKTOP_SEARCH,
    FA_0107_DESKTOP_HOME,
    FA_0105_MOBILE_HOME,
    FA_0105_DESKTOP_HOME,
    FA_0106_DESKTOP_HOME,
]
# sorted by (date, device, step_index)
FA_SORTED = [
    FA_0105_DESKTOP_HOME,
    FA_0105_DESKTOP_SEARCH,
    FA_0105_MOBILE_HOME,
    FA_0106_DESKTOP_HOME,
    FA_0106_DESKTOP_SEARCH,
    FA_0107_DESKTOP_HOME,
]

# What loaded_store inserts, per collection (funnel_definitions stays empty: default_funnel() is None).
DATASET: dict[str, list[dict[str, Any]]] = {
    "users": USERS,
    "page_visits": VISITS,
    "user_interactions": INTERACTIONS,
    "user_sessions": SESSIONS,
    "funnel_analytics": FUNNEL_ANALYTICS,
}
PAGE_TYPES = ["confirmation", "home", "payment", "product", "search"]


# --------------------------------------------------------------------------------------------------
# Expected funnels. Per user, over the listed steps, the time of each step reached and the seconds
# since the anchor (t_k - anchor), from the timelines above:
#
# ORDERED (t1 = first home; t_k = first visit of step k at or after t_{k-1}):
#   u10: 10:00 10:03 10:05 10:06          -> reaches 4, ttc [0, 180, 300, 360]
#   u20: 09:00 09:00 (tie: 09:00 >= 09:00) -> 2,         [0, 0]
#   u30: 14:00, no search                  -> 1,         [0]
#   u40: home 08:05, search >= 08:05 is the 08:10 one, payment 08:20 -> 3, [0, 300, 900]
#   u50: 11:00 11:10:00 11:10:01 11:15     -> 4,         [0, 600, 601, 900]
#   u60: 16:00 16:01 16:03 16:04           -> 4,         [0, 60, 180, 240]
#   u80: home Feb20 13:04, no search after -> 1,         [0]
#   u90: Jan31 23:59:00, Feb1 00:00:30, 00:05:00 -> 3,   [0, 90, 360]
#   u100 never home, u70 nothing           -> not in the funnel
# With WINDOW=600 (step time <= anchor + 600): u40 payment 900 > 600 -> 2; u50 search 600 <= 600 counts,
#   payment 601 > 600 -> 2; the others are unchanged (u10 360, u60 240, u90 360 all <= 600).
#
# STRICT (listed visits sorted by (time, step index), repeats collapsed, each next one must be the next step):
#   u10 4; u20 2 (home sorts before search at the tie); u30: home then payment != search -> 1;
#   u40: from the first home: search, payment -> 3 [0, 300, 900]; u50 4; u60: home, search, home (a listed
#   step that is not payment) -> stops at 2 [0, 60]; u80: home then confirmation -> 1; u90 3.
#   With WINDOW: u40 payment 900 > 600 -> 2, u50 payment 601 -> 2, others as without.
#
# UNORDERED (t0 = first visit to any listed step; t_k = max of the first visits of steps 1..k):
#   u10 t0 10:00 -> 4, ttc [0, 180, 300, 360]
#   u20 t0 09:00 -> 2, [0, 0]
#   u30 t0 14:00 -> 1 (no search), [0]
#   u40 t0 08:00 (search): home 08:05, max(08:05, search 08:00) = 08:05, payment 08:20 -> 3, [300, 300, 1200]
#   u50 -> 4, [0, 600, 601, 900]
#   u60 -> 4, [0, 60, 180, 240]
#   u80 t0 Feb19 23:58 (payment): home Feb20 13:04 = +13h06m = 47160 s; search 13:02 -> max 13:04;
#       payment 23:58 -> max 13:04; confirmation 13:06 = 47280 s -> 4, [47160, 47160, 47160, 47280]
#   u90 -> 3, [0, 90, 360]
#   With WINDOW (limit t0 + 600): u40 payment 08:20 > 08:10 -> 2; u50 -> 2; u80 home is 47160 s after t0
#   -> reaches NOTHING (out of the funnel); others unchanged.
#
# Each user's total duration per step page (all visits, no date filter):
#          home  search  payment  confirmation
#   u10     45     40       60        10
#   u20     12      8        0         0
#   u30     22      0       50         4
#   u40     25     26       33         0
#   u50     31     21       41         7
#   u60     24      6        9         3
#   u80     11     18       44         2
#   u90     35     19       27         0
# --------------------------------------------------------------------------------------------------

# (name, users, conversion_rate, drop_off_rate, conversion_from_start, avg_time_spent, median_time_to_convert)
Step = tuple[str, int, float, float, float, float | None, float | None]


@dataclass(frozen=True)
class FunnelExpectation:
    steps: tuple[Step, ...]
    overall: float


def zero_steps(names: Sequence[str]) -> tuple[Step, ...]:
    # No users: step 1 rate 0.0 and drop-off 0.0; later steps rate 0.0 (previous has none) so drop-off
    # = 1 - 0.0 = 1.0 per FunnelStepResult; from_start 0.0; avg/median None.
    return tuple((n, 0, 0.0, 0.0 if k == 0 else 1.0, 0.0, None, None) for k, n in enumerate(names))


# Reached steps per user, used for funnel_users.
REACH_ORDERED = {10: 4, 20: 2, 30: 1, 40: 3, 50: 4, 60: 4, 80: 1, 90: 3}
REACH_ORDERED_WINDOW = {10: 4, 20: 2, 30: 1, 40: 2, 50: 2, 60: 4, 80: 1, 90: 3}
REACH_STRICT = {10: 4, 20: 2, 30: 1, 40: 3, 50: 4, 60: 2, 80: 1, 90: 3}
REACH_STRICT_WINDOW = {10: 4, 20: 2, 30: 1, 40: 2, 50: 2, 60: 2, 80: 1, 90: 3}
REACH_UNORDERED = {10: 4, 20: 2, 30: 1, 40: 3, 50: 4, 60: 4, 80: 4, 90: 3}
REACH_UNORDERED_WINDOW = {10: 4, 20: 2, 30: 1, 40: 2, 50: 2, 60: 4, 90: 3}

# ORDERED: home 8 users (all but u70, u100); search u10 u20 u40 u50 u60 u90 = 6; payment u10 u40 u50 u60 u90
# = 5; confirmation u10 u50 u60 = 3.
#   avg home 45+12+22+25+31+24+11+35 = 205 /8; search 40+8+26+21+6+19 = 120 /6; payment 60+33+41+9+27
#   = 170 /5; confirmation 10+7+3 = 20 /3.
#   median search [0,60,90,180,300,600] -> (90+180)/2 = 135; payment [180,300,360,601,900] -> 360;
#   confirmation [240,360,900] -> 360.
ORDERED = FunnelExpectation(
    steps=(
        ("home", 8, 1.0, 0.0, 1.0, 205 / 8, 0.0),
        ("search", 6, 6 / 8, 2 / 8, 6 / 8, 120 / 6, 135.0),
        ("payment", 5, 5 / 6, 1 / 6, 5 / 8, 170 / 5, 360.0),
        ("confirmation", 3, 3 / 5, 2 / 5, 3 / 8, 20 / 3, 360.0),
    ),
    overall=3 / 8,
)

# ORDERED + WINDOW: payment u10 u60 u90 (60+9+27 = 96, ttc [180,300,360] -> 300); confirmation u10 u60
# (10+3 = 13, ttc [240,360] -> 300).
ORDERED_WINDOW = FunnelExpectation(
    steps=(
        ("home", 8, 1.0, 0.0, 1.0, 205 / 8, 0.0),
        ("search", 6, 6 / 8, 2 / 8, 6 / 8, 120 / 6, 135.0),
        ("payment", 3, 3 / 6, 3 / 6, 3 / 8, 96 / 3, 300.0),
        ("confirmation", 2, 2 / 3, 1 / 3, 2 / 8, 13 / 2, 300.0),
    ),
    overall=2 / 8,
)

# STRICT: search as ORDERED (u10 u20 u40 u50 u60 u90); payment u10 u40 u50 u90 (60+33+41+27 = 161, ttc
# [300,900,601,360] -> (360+601)/2 = 480.5); confirmation u10 u50 (10+7 = 17, ttc [360,900] -> 630).
STRICT = FunnelExpectation(
    steps=(
        ("home", 8, 1.0, 0.0, 1.0, 205 / 8, 0.0),
        ("search", 6, 6 / 8, 2 / 8, 6 / 8, 120 / 6, 135.0),
        ("payment", 4, 4 / 6, 2 / 6, 4 / 8, 161 / 4, 480.5),
        ("confirmation", 2, 2 / 4, 2 / 4, 2 / 8, 17 / 2, 630.0),
    ),
    overall=2 / 8,
)

# STRICT + WINDOW: payment u10 u90 (60+27 = 87, ttc [300,360] -> 330); confirmation u10 (10, 360).
STRICT_WINDOW = FunnelExpectation(
    steps=(
        ("home", 8, 1.0, 0.0, 1.0, 205 / 8, 0.0),
        ("search", 6, 6 / 8, 2 / 8, 6 / 8, 120 / 6, 135.0),
        ("payment", 2, 2 / 6, 4 / 6, 2 / 8, 87 / 2, 330.0),
        ("confirmation", 1, 1 / 2, 1 / 2, 1 / 8, 10.0, 360.0),
    ),
    overall=1 / 8,
)

# UNORDERED: home 8 (ttc [0,0,0,300,0,0,47160,0] -> 0); search u10 u20 u40 u50 u60 u80 u90 = 7
# (40+8+26+21+6+18+19 = 138; ttc [0,60,90,180,300,600,47160] -> 180); payment u10 u40 u50 u60 u80 u90 = 6
# (60+33+41+9+44+27 = 214; ttc [180,300,360,601,1200,47160] -> (360+601)/2 = 480.5); confirmation
# u10 u50 u60 u80 = 4 (10+7+3+2 = 22; ttc [240,360,900,47280] -> (360+900)/2 = 630).
UNORDERED = FunnelExpectation(
    steps=(
        ("home", 8, 1.0, 0.0, 1.0, 205 / 8, 0.0),
        ("search", 7, 7 / 8, 1 / 8, 7 / 8, 138 / 7, 180.0),
        ("payment", 6, 6 / 7, 1 / 7, 6 / 8, 214 / 6, 480.5),
        ("confirmation", 4, 4 / 6, 2 / 6, 4 / 8, 22 / 4, 630.0),
    ),
    overall=4 / 8,
)

# UNORDERED + WINDOW: u80 drops out entirely. home 7 (205-11 = 194; ttc [0,0,0,300,0,0,0] -> 0); search
# u10 u20 u40 u50 u60 u90 = 6 (120; ttc [180,0,300,600,60,90] -> 135); payment u10 u60 u90 (96; ttc
# [300,180,360] -> 300); confirmation u10 u60 (13; [360,240] -> 300).
UNORDERED_WINDOW = FunnelExpectation(
    steps=(
        ("home", 7, 1.0, 0.0, 1.0, 194 / 7, 0.0),
        ("search", 6, 6 / 7, 1 / 7, 6 / 7, 120 / 6, 135.0),
        ("payment", 3, 3 / 6, 3 / 6, 3 / 7, 96 / 3, 300.0),
        ("confirmation", 2, 2 / 3, 1 / 3, 2 / 7, 13 / 2, 300.0),
    ),
    overall=2 / 7,
)

# ORDERED by device. desktop = u10(4) u30(1) u50(4) u80(1): home 45+22+31+11 = 109; search u10 u50
# (40+21 = 61, ttc [180,600] -> 390); payment u10 u50 (60+41 = 101, [300,601] -> 450.5); confirmation
# u10 u50 (10+7 = 17, [360,900] -> 630).
DEVICE_DESKTOP = FunnelExpectation(
    steps=(
        ("home", 4, 1.0, 0.0, 1.0, 109 / 4, 0.0),
        ("search", 2, 2 / 4, 2 / 4, 2 / 4, 61 / 2, 390.0),
        ("payment", 2, 1.0, 0.0, 2 / 4, 101 / 2, 450.5),
        ("confirmation", 2, 1.0, 0.0, 2 / 4, 17 / 2, 630.0),
    ),
    overall=2 / 4,
)
# mobile = u20(2) u40(3) u90(3): home 12+25+35 = 72; search all three (8+26+19 = 53, ttc [0,300,90] -> 90);
# payment u40 u90 (33+27 = 60, [900,360] -> 630); confirmation nobody.
DEVICE_MOBILE = FunnelExpectation(
    steps=(
        ("home", 3, 1.0, 0.0, 1.0, 72 / 3, 0.0),
        ("search", 3, 1.0, 0.0, 1.0, 53 / 3, 90.0),
        ("payment", 2, 2 / 3, 1 / 3, 2 / 3, 60 / 2, 630.0),
        ("confirmation", 0, 0.0, 1.0, 0.0, None, None),
    ),
    overall=0.0,
)
# no device = u60 alone (4 steps): durations 24, 6, 9, 3; ttc 0, 60, 180, 240.
DEVICE_NONE = FunnelExpectation(
    steps=(
        ("home", 1, 1.0, 0.0, 1.0, 24.0, 0.0),
        ("search", 1, 1.0, 0.0, 1.0, 6.0, 60.0),
        ("payment", 1, 1.0, 0.0, 1.0, 9.0, 180.0),
        ("confirmation", 1, 1.0, 0.0, 1.0, 3.0, 240.0),
    ),
    overall=1.0,
)

# ORDERED by sex. female = u20(2) u30(1) u60(4): home 12+22+24 = 58; search u20 u60 (8+6 = 14, ttc [0,60]
# -> 30); payment u60 (9, 180); confirmation u60 (3, 240).
SEX_FEMALE = FunnelExpectation(
    steps=(
        ("home", 3, 1.0, 0.0, 1.0, 58 / 3, 0.0),
        ("search", 2, 2 / 3, 1 / 3, 2 / 3, 14 / 2, 30.0),
        ("payment", 1, 1 / 2, 1 / 2, 1 / 3, 9.0, 180.0),
        ("confirmation", 1, 1.0, 0.0, 1 / 3, 3.0, 240.0),
    ),
    overall=1 / 3,
)
# male = u10(4) u40(3) u80(1) u90(3): home 45+25+11+35 = 116; search u10 u40 u90 (40+26+19 = 85, ttc
# [180,300,90] -> 180); payment same three (60+33+27 = 120, [300,900,360] -> 360); confirmation u10 (10, 360).
SEX_MALE = FunnelExpectation(
    steps=(
        ("home", 4, 1.0, 0.0, 1.0, 116 / 4, 0.0),
        ("search", 3, 3 / 4, 1 / 4, 3 / 4, 85 / 3, 180.0),
        ("payment", 3, 1.0, 0.0, 3 / 4, 120 / 3, 360.0),
        ("confirmation", 1, 1 / 3, 2 / 3, 1 / 4, 10.0, 360.0),
    ),
    overall=1 / 4,
)
# no sex = u50 alone: durations 31, 21, 41, 7; ttc 0, 600, 601, 900.
SEX_NONE = FunnelExpectation(
    steps=(
        ("home", 1, 1.0, 0.0, 1.0, 31.0, 0.0),
        ("search", 1, 1.0, 0.0, 1.0, 21.0, 600.0),
        ("payment", 1, 1.0, 0.0, 1.0, 41.0, 601.0),
        ("confirmation", 1, 1.0, 0.0, 1.0, 7.0, 900.0),
    ),
    overall=1.0,
)

# device=desktop AND breakdown by sex: female = u30 (reaches 1, home 22); male = u10(4) u80(1): home
# 45+11 = 56, search u10 (40, 180), payment (60, 300), confirmation (10, 360); None = u50 (SEX_NONE).
DESKTOP_FEMALE = FunnelExpectation(
    steps=(
        ("home", 1, 1.0, 0.0, 1.0, 22.0, 0.0),
        ("search", 0, 0.0, 1.0, 0.0, None, None),
        ("payment", 0, 0.0, 1.0, 0.0, None, None),
        ("confirmation", 0, 0.0, 1.0, 0.0, None, None),
    ),
    overall=0.0,
)
DESKTOP_MALE = FunnelExpectation(
    steps=(
        ("home", 2, 1.0, 0.0, 1.0, 56 / 2, 0.0),
        ("search", 1, 1 / 2, 1 / 2, 1 / 2, 40.0, 180.0),
        ("payment", 1, 1.0, 0.0, 1 / 2, 60.0, 300.0),
        ("confirmation", 1, 1.0, 0.0, 1 / 2, 10.0, 360.0),
    ),
    overall=1 / 2,
)

# Visits in February only (start 2015-02-01, end 2015-02-28): u90 keeps search+payment but has no home
# -> out; u50(4) u60(4) u80(1). home 31+24+11 = 66; search u50 u60 (21+6 = 27, ttc [600,60] -> 330);
# payment (41+9 = 50, [601,180] -> 390.5); confirmation (7+3 = 10, [900,240] -> 570).
FEBRUARY = FunnelExpectation(
    steps=(
        ("home", 3, 1.0, 0.0, 1.0, 66 / 3, 0.0),
        ("search", 2, 2 / 3, 1 / 3, 2 / 3, 27 / 2, 330.0),
        ("payment", 2, 1.0, 0.0, 2 / 3, 50 / 2, 390.5),
        ("confirmation", 2, 1.0, 0.0, 2 / 3, 10 / 2, 570.0),
    ),
    overall=2 / 3,
)
# Visits in January only (start 2015-01-01, end 2015-01-31 inclusive): u90 keeps only home Jan 31 23:59
# -> reaches 1. u10(4) u20(2) u30(1) u40(3) u90(1). home 45+12+22+25+35 = 139; search u10 u20 u40 (40+8+26
# = 74, ttc [180,0,300] -> 180); payment u10 u40 (60+33 = 93, [300,900] -> 600); confirmation u10 (10, 360).
JANUARY = FunnelExpectation(
    steps=(
        ("home", 5, 1.0, 0.0, 1.0, 139 / 5, 0.0),
        ("search", 3, 3 / 5, 2 / 5, 3 / 5, 74 / 3, 180.0),
        ("payment", 2, 2 / 3, 1 / 3, 2 / 5, 93 / 2, 600.0),
        ("confirmation", 1, 1 / 2, 1 / 2, 1 / 5, 10.0, 360.0),
    ),
    overall=1 / 5,
)

NOBODY = FunnelExpectation(steps=zero_steps(STEPS), overall=0.0)

# steps (home, wishlist): nobody visits "wishlist".
HOME_WISHLIST = FunnelExpectation(
    steps=(("home", 8, 1.0, 0.0, 1.0, 205 / 8, 0.0), ("wishlist", 0, 0.0, 1.0, 0.0, None, None)),
    overall=0.0,
)
# steps (search,) alone: every user with a search visit, u100 included: u10 u20 u40 u50 u60 u80 u90 u100
# = 8, durations 40+8+26+21+6+18+19+(15+12) = 165; ttc all 0 (anchor = t1); overall = 8/8.
SEARCH_ONLY = FunnelExpectation(steps=(("search", 8, 1.0, 0.0, 1.0, 165 / 8, 0.0),), overall=1.0)

# --------------------------------------------------------------------------------------------------
# Trends (ORDERED, cohort = period of t1):
#   u10 2015-01-05 Mon, u20 01-06 Tue, u30 01-12 Mon, u40 01-20 Tue, u90 01-31 Sat (reaches search/payment
#   on Feb 1 but stays in January's cohort), u50 02-02 Mon, u60 02-03 Tue, u80 02-20 Fri.
# UNORDERED moves u80 to its t0, 2015-02-19 (Thursday, same ISO week 02-16, same month).
# --------------------------------------------------------------------------------------------------

# MONTH, ORDERED. January = u10(4) u20(2) u30(1) u40(3) u90(3): home 45+12+22+25+35 = 139; search u10 u20
# u40 u90 (40+8+26+19 = 93, ttc [180,0,300,90] -> (90+180)/2 = 135); payment u10 u40 u90 (60+33+27 = 120,
# [300,900,360] -> 360); confirmation u10 (10, 360). February = u50(4) u60(4) u80(1) = FEBRUARY above.
TREND_MONTH_JANUARY = FunnelExpectation(
    steps=(
        ("home", 5, 1.0, 0.0, 1.0, 139 / 5, 0.0),
        ("search", 4, 4 / 5, 1 / 5, 4 / 5, 93 / 4, 135.0),
        ("payment", 3, 3 / 4, 1 / 4, 3 / 5, 120 / 3, 360.0),
        ("confirmation", 1, 1 / 3, 2 / 3, 1 / 5, 10.0, 360.0),
    ),
    overall=1 / 5,
)
TREND_MONTH = [(day("2015-01-01"), TREND_MONTH_JANUARY), (day("2015-02-01"), FEBRUARY)]

# (period, users per step, conversion_rate)
TREND_WEEK_ORDERED = [
    (day("2015-01-05"), [2, 2, 1, 1], 1 / 2),  # u10(4) u20(2)
    (day("2015-01-12"), [1, 0, 0, 0], 0.0),  # u30(1)
    (day("2015-01-19"), [1, 1, 1, 0], 0.0),  # u40(3), Tue 01-20 -> Mon 01-19
    (day("2015-01-26"), [1, 1, 1, 0], 0.0),  # u90(3), Sat 01-31 -> Mon 01-26
    (day("2015-02-02"), [2, 2, 2, 2], 1.0),  # u50(4) u60(4)
    (day("2015-02-16"), [1, 0, 0, 0], 0.0),  # u80(1), Fri 02-20 -> Mon 02-16
]
TREND_DAY_ORDERED = [
    (day("2015-01-05"), [1, 1, 1, 1], 1.0),
    (day("2015-01-06"), [1, 1, 0, 0], 0.0),
    (day("2015-01-12"), [1, 0, 0, 0], 0.0),
    (day("2015-01-20"), [1, 1, 1, 0], 0.0),
    (day("2015-01-31"), [1, 1, 1, 0], 0.0),
    (day("2015-02-02"), [1, 1, 1, 1], 1.0),
    (day("2015-02-03"), [1, 1, 1, 1], 1.0),
    (day("2015-02-20"), [1, 0, 0, 0], 0.0),
]
TREND_DAY_UNORDERED = [
    *TREND_DAY_ORDERED[:7],
    (day("2015-02-19"), [1, 1, 1, 1], 1.0),  # u80 completes unordered, cohort of t0 = Feb 19
]
# The 2015-02-19 UNORDERED cohort is u80 alone: durations 11, 18, 44, 2; ttc 47160, 47160, 47160, 47280.
TREND_DAY_UNORDERED_0219 = FunnelExpectation(
    steps=(
        ("home", 1, 1.0, 0.0, 1.0, 11.0, 47160.0),
        ("search", 1, 1.0, 0.0, 1.0, 18.0, 47160.0),
        ("payment", 1, 1.0, 0.0, 1.0, 44.0, 47160.0),
        ("confirmation", 1, 1.0, 0.0, 1.0, 2.0, 47280.0),
    ),
    overall=1.0,
)


# --------------------------------------------------------------------------------------------------
# comparison helpers
# --------------------------------------------------------------------------------------------------


def _same_float(actual: float | None, expected: float | None) -> bool:
    if expected is None or actual is None:
        return actual is expected
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)


def step_tuple(step: FunnelStepResult) -> Step:
    return (
        step.name,
        step.users,
        step.conversion_rate,
        step.drop_off_rate,
        step.conversion_from_start,
        step.avg_time_spent,
        step.median_time_to_convert,
    )


def assert_steps(actual: Sequence[FunnelStepResult], expected: Sequence[Step]) -> None:
    """Names and users exactly, floats approximately, None exactly; the message shows both tables."""
    got = [step_tuple(s) for s in actual]
    message = f"\n got      {got}\n expected {list(expected)}"
    assert len(got) == len(expected), message
    for g, e in zip(got, expected, strict=True):
        assert g[0] == e[0] and g[1] == e[1], message
        assert all(_same_float(a, b) for a, b in zip(g[2:], e[2:], strict=True)), message


def assert_funnel(steps: Sequence[FunnelStepResult], overall: float, expected: FunnelExpectation) -> None:
    assert_steps(steps, expected.steps)
    assert math.isclose(overall, expected.overall, abs_tol=1e-9), (overall, expected.overall)
