from pathlib import Path

import pytest

from gateway.config import load_settings, settings_env
from gateway.errors import ConfigError
from gateway.services import cluster_nodes


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={})
    assert s.data_dir == Path("data").resolve()
    assert (tmp_path / "data").is_dir()
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.mongo_url is None and s.embedded_document_store
    assert s.mongo_db == "funnel_analysis"
    assert s.milvus_target == str(tmp_path / "data" / "milvus.db") and s.embedded_vectors
    assert s.redis_url is None
    assert s.duckdb_path == tmp_path / "data" / "funnel.duckdb"
    assert s.index and s.preaggregates


def test_funnel_engine_switches(tmp_path):
    s = load_settings(
        env={"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_INDEX": "off", "FUNNEL_PREAGGREGATES": "No"}
    )
    assert (s.index, s.preaggregates) == (False, False)
    assert load_settings(env=settings_env(s)) == s
    with pytest.raises(ConfigError, match=r"FUNNEL_INDEX.*expected on or off"):
        load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_INDEX": "sometimes"})


def test_values_are_cast(tmp_path):
    env = {
        "FUNNEL_DATA_DIR": str(tmp_path / "d"),
        "FUNNEL_HOST": "0.0.0.0",
        "FUNNEL_PORT": "9001",
        "FUNNEL_MONGO_URL": "mongodb://u:p@db.example:27017/?authSource=admin",
        "FUNNEL_MONGO_DB": "other",
        "FUNNEL_MILVUS_URI": "http://milvus:19530",
        "FUNNEL_REDIS_URL": "redis://cache:6379/1",
    }
    s = load_settings(env=env)
    assert s.data_dir == tmp_path / "d" and s.port == 9001 and s.host == "0.0.0.0"
    assert not s.embedded_document_store and s.mongo_db == "other"
    assert s.milvus_target == "http://milvus:19530"
    assert s.redis_url == "redis://cache:6379/1"
    assert load_settings(env=settings_env(s)) == s


def test_operations_per_socket_default_and_setting(tmp_path):
    assert load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path)}).max_operations_per_socket == 100
    env = {"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_MAX_OPERATIONS_PER_SOCKET": "3"}
    assert load_settings(env=env).max_operations_per_socket == 3


def test_graphql_body_limit_default_setting_and_floor(tmp_path):
    base = {"FUNNEL_DATA_DIR": str(tmp_path)}
    assert load_settings(env=base).graphql_body_limit == 1_048_576
    assert load_settings(env={**base, "FUNNEL_MAX_BODY_BYTES": "300000"}).graphql_body_limit == 300_000
    # never below 4 bytes per character of the largest document (20,000 characters by default)
    assert load_settings(env={**base, "FUNNEL_MAX_BODY_BYTES": "1000"}).graphql_body_limit == 80_000
    with pytest.raises(ConfigError, match=r"FUNNEL_MAX_BODY_BYTES.*positive integer"):
        load_settings(env={**base, "FUNNEL_MAX_BODY_BYTES": "1MB"})


def test_empty_values_count_as_unset(tmp_path):
    s = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_MONGO_URL": "", "FUNNEL_PORT": " "})
    assert s.mongo_url is None and s.port == 8000


def test_cli_overrides_beat_env(tmp_path):
    s = load_settings(
        env={"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_PORT": "9001"}, overrides={"port": "9002"}
    )
    assert s.port == 9002


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("FUNNEL_PORT", "eighty", "expected an integer port"),
        ("FUNNEL_PORT", "0", "out of range"),
        ("FUNNEL_PORT", "70000", "out of range"),
        ("FUNNEL_MONGO_URL", "postgres://x", "must start with one of mongodb://"),
        ("FUNNEL_MONGO_URL", "mongodb://h:port/", "unparsable URL"),
        ("FUNNEL_REDIS_URL", "redis://", "has no host"),
        ("FUNNEL_MILVUS_URI", "ftp://m:1", "must start with one of"),
        ("FUNNEL_LOG_LEVEL", "LOUD", "expected DEBUG"),
        ("FUNNEL_MAX_PAGE_SIZE", "-3", "positive integer"),
        ("FUNNEL_MAX_PAGE_SIZE", "50", "at least 100 (the lists' default page"),
        ("FUNNEL_HEADER_TIMEOUT_S", "soon", "expected a number of seconds"),
        ("FUNNEL_HEADER_TIMEOUT_S", "0", "positive number of seconds"),
        ("FUNNEL_BODY_TIMEOUT_S", "-1", "positive number of seconds"),
        ("FUNNEL_BODY_TIMEOUT_S", "inf", "positive number of seconds"),
        ("FUNNEL_MAX_OPERATIONS_PER_SOCKET", "0", "positive integer"),
        ("FUNNEL_MAX_OPERATIONS_PER_SOCKET", "many", "positive integer"),
    ],
)
def test_bad_values_name_the_key(tmp_path, key, value, fragment):
    with pytest.raises(ConfigError) as err:
        load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path), key: value})
    assert err.value.key == key
    assert str(err.value).startswith(f"{key}: ")
    assert fragment in str(err.value)


def test_unwritable_data_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError) as err:
        load_settings(env={"FUNNEL_DATA_DIR": str(blocker / "sub")})
    assert err.value.key == "FUNNEL_DATA_DIR"


def test_bad_override_names_the_flag(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path)}, overrides={"port": "x"})
    assert err.value.key == "--port"


def test_milvus_lite_path_accepted(tmp_path):
    s = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_MILVUS_URI": str(tmp_path / "v.db")})
    assert s.milvus_target == str(tmp_path / "v.db")


def test_redis_cluster_needs_a_tcp_node(tmp_path):
    base = {"FUNNEL_DATA_DIR": str(tmp_path)}
    s = load_settings(env={**base, "FUNNEL_REDIS_URL": "redis://10.0.0.5:7000", "FUNNEL_REDIS_CLUSTER": "on"})
    assert s.redis_cluster and s.redis_url == "redis://10.0.0.5:7000"
    assert load_settings(env=settings_env(s)) == s
    assert not load_settings(env=base).redis_cluster
    with pytest.raises(ConfigError, match=r"FUNNEL_REDIS_CLUSTER.*needs FUNNEL_REDIS_URL"):
        load_settings(env={**base, "FUNNEL_REDIS_CLUSTER": "on"})
    with pytest.raises(ConfigError, match=r"FUNNEL_REDIS_URL.*redis://"):
        load_settings(env={**base, "FUNNEL_REDIS_URL": "unix:///tmp/r.sock", "FUNNEL_REDIS_CLUSTER": "yes"})


def test_more_cluster_nodes_to_discover_the_cluster_from(tmp_path):
    base = {"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_REDIS_URL": "redis://10.0.0.5:7000"}
    cluster = {**base, "FUNNEL_REDIS_CLUSTER": "on"}
    s = load_settings(env={**cluster, "FUNNEL_REDIS_CLUSTER_NODES": " 10.0.0.6:7001, [::1]:7002,"})
    assert s.redis_cluster_nodes == ("10.0.0.6:7001", "[::1]:7002")
    assert cluster_nodes(s) == [("10.0.0.6", 7001), ("::1", 7002)]
    assert load_settings(env=settings_env(s)) == s
    assert cluster_nodes(load_settings(env=cluster)) == []
    with pytest.raises(ConfigError, match=r"FUNNEL_REDIS_CLUSTER_NODES.*host:port.*'10.0.0.6'"):
        load_settings(env={**cluster, "FUNNEL_REDIS_CLUSTER_NODES": "10.0.0.6"})
    with pytest.raises(ConfigError, match=r"FUNNEL_REDIS_CLUSTER_NODES.*port 70000"):
        load_settings(env={**cluster, "FUNNEL_REDIS_CLUSTER_NODES": "10.0.0.6:70000"})
    with pytest.raises(ConfigError, match=r"FUNNEL_REDIS_CLUSTER_NODES.*only with FUNNEL_REDIS_CLUSTER=on"):
        load_settings(env={**base, "FUNNEL_REDIS_CLUSTER_NODES": "10.0.0.6:7001"})


def test_a_value_set_by_a_flag_is_named_by_the_flag_and_one_from_the_environment_by_its_variable(tmp_path):
    env = {"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_HOST": "0.0.0.0"}
    settings = load_settings(env=env, overrides={"port": "9001", "host": None})
    assert (settings.host, settings.port) == ("0.0.0.0", 9001)
    assert settings.key_of("port") == "--port"
    assert settings.key_of("host") == "FUNNEL_HOST"
    assert load_settings(env=env).key_of("port") == "FUNNEL_PORT"


def test_the_smallest_max_page_size_holds_every_default_page():
    # Every list's page when a query sends no `first`: none may exceed the smallest allowed maximum.
    from gateway.analytics.pages import DEFAULT_PAGE as VISIT_LISTS
    from gateway.setting_values import MIN_MAX_PAGE_SIZE
    from resolvers.query import DEFAULT_PAGE as CONNECTIONS

    assert max(VISIT_LISTS, CONNECTIONS) <= MIN_MAX_PAGE_SIZE
    assert load_settings(env={"FUNNEL_MAX_PAGE_SIZE": "100"}).max_page_size == 100
