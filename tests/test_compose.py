"""docker-compose.yml cannot run here (no Docker engine), so check its structure as data."""

from __future__ import annotations

from pathlib import Path

import yaml

from gateway.config import load_settings

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_services_and_volumes():
    doc = _compose()
    assert set(doc["services"]) == {"mongodb", "etcd", "minio", "milvus", "redis", "gateway"}
    for name, service in doc["services"].items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
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
    env["FUNNEL_DATA_DIR"] = str(tmp_path)  # /data does not exist outside the container
    settings = load_settings(env=env)
    assert settings.mongo_url and settings.mongo_url.startswith("mongodb://funnel:pw@mongodb:27017")
    assert settings.milvus_uri == "http://milvus:19530"
    assert settings.redis_url == "redis://redis:6379/0"
