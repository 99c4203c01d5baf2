from datetime import date, datetime

from gateway.cache import codec, keys


def test_design_key_patterns():
    assert keys.dashboard(date(2015, 1, 1), date(2015, 1, 31)) == "metrics:dashboard:2015-01-01..2015-01-31"
    assert keys.dashboard(None, None, "mobile", None) == "metrics:dashboard:all..all:mobile:all"
    assert (
        keys.dashboard(date(2015, 1, 1), None, None, "female")
        == "metrics:dashboard:2015-01-01..all:all:female"
    )
    assert keys.realtime_metrics() == "metrics:realtime"
    assert keys.session("42-1") == "session:42-1"
    assert keys.user_active(42) == "user:active:42"
    assert keys.realtime_users() == "realtime:{live}:users"
    assert keys.similar_users(42) == "query:similar_users:42"
    assert keys.user_journey(42) == "query:user_journey:42"
    assert keys.sentiment("search", date(2015, 2, 1)) == "query:sentiment:search:2015-02-01"
    assert keys.funnel("mobile", date(2015, 2, 1), {"a": 1}).startswith("metrics:funnel:mobile:2015-02-01:")


def test_design_ttls():
    assert keys.TTL_REALTIME == 30
    assert keys.TTL_DAILY == 3600
    assert keys.TTL_HISTORICAL == 86400
    assert keys.TTL_ACTIVE_SESSION == 1800
    assert keys.TTL_USER_ACTIVITY == 300
    assert keys.TTL_REALTIME_LIST == 60
    assert 3600 <= keys.TTL_QUERY_SHORT <= keys.TTL_QUERY_LONG <= 86400


def test_different_arguments_never_share_a_key():
    args = [
        {"steps": ["home", "search"], "order": "ordered", "window": None},
        {"steps": ["home", "search"], "order": "strict", "window": None},
        {"steps": ["home", "search"], "order": "ordered", "window": 60},
        {"steps": ["search", "home"], "order": "ordered", "window": None},
    ]
    made = {keys.funnel("desktop", "all", a) for a in args}
    assert len(made) == len(args)
    assert keys.funnel("desktop", "all", args[0]) != keys.funnel("mobile", "all", args[0])
    assert keys.similar_users(1, {"limit": 5}) != keys.similar_users(1, {"limit": 6}) != keys.similar_users(1)


def test_digest_ignores_dict_order():
    assert keys.digest({"a": 1, "b": 2}) == keys.digest({"b": 2, "a": 1})


def test_family():
    assert keys.family("query:similar_users:42") == "query:similar_users"
    assert keys.family("metrics:realtime") == "metrics:realtime"


def test_codec_round_trip_keeps_types():
    value = {"when": datetime(2015, 1, 2, 3, 4, 5), "day": date(2015, 1, 2), "n": [1, 2.5, None], "s": "x"}
    assert codec.loads(codec.dumps(value)) == value
