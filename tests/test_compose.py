"""docker-compose.yml cannot run here (no Docker engine), so check its structure as data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.web.server import check_exposure

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_services_and_volumes():
    doc = _compose()
    always = {name for name, service in doc["services"].items() if "profiles" not in service}
    assert always == {"mongodb", "etcd", "minio", "milvus", "redis", "gateway"}
    for name, service in doc["services"].items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):  # configuration from the repository, read-only
                assert (COMPOSE.parent / source).is_file() and volume.endswith(":ro"), volume
                continue
            assert source in doc["volumes"], f"{name} mounts {source}, which is not a named volume"


def test_images_are_current_majors():
    services = _compose()["services"]
    assert int(services["mongodb"]["image"].split(":")[1].split(".")[0]) >= 7
    assert services["milvus"]["image"].split(":")[1].startswith("v2.")
    assert services["milvus"]["command"][-1] == "standalone"


def test_redis_is_durable_with_an_eviction_policy():
    command = " ".join(_compose()["services"]["redis"]["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy volatile-lru" in command  # cache entries expire; counters must not go


def test_gateway_waits_for_healthy_backends_and_its_env_parses(tmp_path):
    gateway = _compose()["services"]["gateway"]
    assert gateway["build"] == "."
    assert {dep: cond["condition"] for dep, cond in gateway["depends_on"].items()} == {
        "mongodb": "service_healthy",
        "milvus": "service_healthy",
        "redis": "service_healthy",
    }
    env = {k: v.replace("${MONGO_ROOT_USER:-funnel}", "funnel") for k, v in gateway["environment"].items()}
    env = {k: v.replace("${MONGO_ROOT_PASSWORD:-funnel-local-only}", "pw") for k, v in env.items()}
    env = _interpolated(env, {})  # the edge settings' defaults (empty: unset)
    env["FUNNEL_DATA_DIR"] = str(tmp_path)  # /data does not exist outside the container
    settings = load_settings(env=env)
    assert settings.mongo_url and settings.mongo_url.startswith("mongodb://funnel:pw@mongodb:27017")
    assert settings.milvus_uri == "http://milvus:19530"
    assert settings.redis_url == "redis://redis:6379/0"


def _interpolated(environment: dict[str, str], given: dict[str, str]) -> dict[str, str]:
    """Compose's ${VAR:-default}: the value from ``given``, else the default."""

    def value(match: re.Match[str]) -> str:
        return given.get(match.group(1), match.group(2))

    return {k: re.sub(r"\$\{(\w+):-([^}]*)\}", value, v) for k, v in environment.items()}


def test_the_gateway_refuses_to_start_without_credentials_and_starts_with_a_key(tmp_path):
    environment = _compose()["services"]["gateway"]["environment"]
    bare = {**_interpolated(environment, {}), "FUNNEL_DATA_DIR": str(tmp_path)}
    with pytest.raises(ConfigError) as refused:
        check_exposure(load_settings(env=bare))
    assert refused.value.key == "FUNNEL_HOST" and "FUNNEL_API_KEYS" in str(refused.value)
    entry = "ops:admin:" + "ab" * 32
    keyed = {**_interpolated(environment, {"FUNNEL_API_KEYS": entry}), "FUNNEL_DATA_DIR": str(tmp_path)}
    settings = load_settings(env=keyed)
    check_exposure(settings)
    assert settings.api_keys == (entry,) and settings.allowed_hosts == ("localhost", "127.0.0.1")


def test_the_replicas_profile_runs_two_gateways_behind_nginx():
    services = _compose()["services"]
    assert {n for n, s in services.items() if "replicas" in s.get("profiles", [])} == {"gateway-2", "nginx"}
    # The second replica is the first one's twin: same image, same settings, its own data volume.
    assert services["gateway-2"]["environment"] == services["gateway"]["environment"]
    assert services["gateway-2"]["build"] == services["gateway"]["build"]
    assert services["gateway-2"]["volumes"] != services["gateway"]["volumes"]
    nginx = services["nginx"]
    assert set(nginx["depends_on"]) == {"gateway", "gateway-2"}
    conf = (COMPOSE.parent / "docs" / "deploy" / "nginx.conf").read_text()
    assert "server gateway:8000" in conf and "server gateway-2:8000" in conf
    assert "listen 8080;" in conf and nginx["ports"] == ["127.0.0.1:8080:8080"]
