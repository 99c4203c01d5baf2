"""A tiny hand-made shop, small enough that every expected number in tests/api is computed by hand.

Default funnel: home -> search -> payment -> confirmation. Who did what (all January 2015, UTC):

  user 1 desktop/male    01-01  s1:  home 10:00 (10 s), search 10:01 (20), payment 10:03 (30),
                                      confirmation 10:05 (5)                          converted, 50.0
  user 2 mobile/female   01-01  s2:  home 11:00 (15), payment 11:01 (4), search 11:02 (25)
  user 3 desktop/female  01-02  s3:  home 09:00 (8), search 09:01 (12), payment 09:04 (40)
  user 4 mobile/male     01-05  s4a: home 01-05 12:00 (5)
                                s4b: home 01-06 08:00 (6), search 08:01 (9), payment 08:02 (11),
                                      confirmation 08:10 (3)                          converted, 30.0
  user 5 tablet/male     01-05  s5:  search 13:00 (10), home 13:05 (7)
  user 6 desktop/female  01-06  no sessions, no visits

Form texts on payment_page: user 1 (01-01) clearly positive, user 2 (01-01) empty, user 3 (01-02)
clearly negative, user 4 (01-06) neutral.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

HOME, SEARCH, PAYMENT, CONFIRM = "home_page", "search_page", "payment_page", "payment_confirmation_page"
DEFAULT_FUNNEL = [HOME, SEARCH, PAYMENT, CONFIRM]

POSITIVE_TEXT = "I love this store, checkout was great and easy!"
NEGATIVE_TEXT = "This is terrible, the payment failed and I hate it."
NEUTRAL_TEXT = "The page has a button."

USERS: list[dict[str, Any]] = [
    {
        "user_id": 1,
        "device": "desktop",
        "sex": "male",
        "date": date(2015, 1, 1),
        "attributes": {"channel": "seo"},
    },
    {"user_id": 2, "device": "mobile", "sex": "female", "date": date(2015, 1, 1), "attributes": {}},
    {"user_id": 3, "device": "desktop", "sex": "female", "date": date(2015, 1, 2), "attributes": {}},
    {"user_id": 4, "device": "mobile", "sex": "male", "date": date(2015, 1, 5), "attributes": {}},
    {"user_id": 5, "device": "tablet", "sex": "male", "date": date(2015, 1, 5), "attributes": {}},
    {"user_id": 6, "device": "desktop", "sex": "female", "date": date(2015, 1, 6), "attributes": {}},
]
DEVICE = {u["user_id"]: u["device"] for u in USERS}


def _t(day: int, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2015, 1, day, hh, mm, ss)


# (session, user, page, timestamp, duration)
_VISITS = [
    ("s1", 1, HOME, _t(1, 10, 0), 10.0),
    ("s1", 1, SEARCH, _t(1, 10, 1), 20.0),
    ("s1", 1, PAYMENT, _t(1, 10, 3), 30.0),
    ("s1", 1, CONFIRM, _t(1, 10, 5), 5.0),
    ("s2", 2, HOME, _t(1, 11, 0), 15.0),
    ("s2", 2, PAYMENT, _t(1, 11, 1), 4.0),
    ("s2", 2, SEARCH, _t(1, 11, 2), 25.0),
    ("s3", 3, HOME, _t(2, 9, 0), 8.0),
    ("s3", 3, SEARCH, _t(2, 9, 1), 12.0),
    ("s3", 3, PAYMENT, _t(2, 9, 4), 40.0),
    ("s4a", 4, HOME, _t(5, 12, 0), 5.0),
    ("s4b", 4, HOME, _t(6, 8, 0), 6.0),
    ("s4b", 4, SEARCH, _t(6, 8, 1), 9.0),
    ("s4b", 4, PAYMENT, _t(6, 8, 2), 11.0),
    ("s4b", 4, CONFIRM, _t(6, 8, 10), 3.0),
    ("s5", 5, SEARCH, _t(5, 13, 0), 10.0),
    ("s5", 5, HOME, _t(5, 13, 5), 7.0),
]
VISITS: list[dict[str, Any]] = [
    {
        "event_id": f"v{i:02d}",
        "user_id": user,
        "session_id": session,
        "page_type": page,
        "timestamp": ts,
        "duration": duration,
        "device": DEVICE[user],
    }
    for i, (session, user, page, ts, duration) in enumerate(_VISITS, start=1)
]

# (session, user, page, type, element, timestamp, value)
_INTERACTIONS = [
    ("s1", 1, HOME, "click", "search-box", _t(1, 10, 0, 5), None),
    ("s1", 1, PAYMENT, "form", "feedback", _t(1, 10, 3, 30), POSITIVE_TEXT),
    ("s2", 2, PAYMENT, "form", "feedback", _t(1, 11, 1, 30), ""),
    ("s3", 3, PAYMENT, "form", "feedback", _t(2, 9, 4, 30), NEGATIVE_TEXT),
    ("s4b", 4, PAYMENT, "form", "feedback", _t(6, 8, 5), NEUTRAL_TEXT),
]
INTERACTIONS: list[dict[str, Any]] = [
    {
        "event_id": f"i{i:02d}",
        "user_id": user,
        "session_id": session,
        "page_type": page,
        "interaction_type": kind,
        "element": element,
        "timestamp": ts,
        "coordinates": {"x": 10 * i, "y": 20 * i},
        "value": value,
        "free_text": kind == "form",
    }
    for i, (session, user, page, kind, element, ts, value) in enumerate(_INTERACTIONS, start=1)
]


def _session(
    sid: str, user: int, start: datetime, end: datetime, converted: bool, value: float
) -> dict[str, Any]:
    pages = [v["page_type"] for v in VISITS if v["session_id"] == sid]
    interactions = sum(1 for i in INTERACTIONS if i["session_id"] == sid)
    return {
        "session_id": sid,
        "user_id": user,
        "start_time": start,
        "end_time": end,
        "device": DEVICE[user],
        "pages_visited": pages,
        "total_interactions": interactions,
        "converted": converted,
        "conversion_value": value,
    }


# Durations: s1 360 s, s2 180, s3 300, s4a 60, s4b 660, s5 360.
SESSIONS: list[dict[str, Any]] = [
    _session("s1", 1, _t(1, 10, 0), _t(1, 10, 6), True, 50.0),
    _session("s2", 2, _t(1, 11, 0), _t(1, 11, 3), False, 0.0),
    _session("s3", 3, _t(2, 9, 0), _t(2, 9, 5), False, 0.0),
    _session("s4a", 4, _t(5, 12, 0), _t(5, 12, 1), False, 0.0),
    _session("s4b", 4, _t(6, 8, 0), _t(6, 8, 11), True, 30.0),
    _session("s5", 5, _t(5, 13, 0), _t(5, 13, 6), False, 0.0),
]

# Behaviour vectors (4-d) chosen so the neighbours are obvious: user 4 and 2 point almost like user 1,
# user 3 and 5 are orthogonal to it, user 6 sits in between.
VECTORS: dict[int, list[float]] = {
    1: [1.0, 0.0, 0.0, 0.0],
    2: [0.9, 0.3, 0.0, 0.0],
    3: [0.0, 1.0, 0.0, 0.0],
    4: [0.95, 0.0, 0.1, 0.0],
    5: [0.0, 0.0, 1.0, 0.0],
    6: [0.5, 0.5, 0.5, 0.5],
}
CONVERTED_USERS = {1, 4}
# Page vectors (4-d) per page type: on home, user 5 behaved like user 2; on search only 1, 2 and 3 have one.
PAGE_VECTORS: dict[str, dict[int, list[float]]] = {
    "home": {
        1: [0.0, 0.0, 0.0, 1.0],
        2: [1.0, 0.0, 0.0, 0.0],
        3: [0.0, 1.0, 0.0, 0.0],
        4: [0.0, 0.0, 1.0, 0.0],
        5: [0.9, 0.1, 0.0, 0.0],
        6: [0.5, 0.5, 0.5, 0.5],
    },
    "search": {1: [1.0, 0.0, 0.0, 0.0], 2: [0.0, 1.0, 0.0, 0.0], 3: [0.8, 0.6, 0.0, 0.0]},
}
