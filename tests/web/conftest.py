"""The pages the gateway serves: the API fixture (tests/api) behind a test client, and the npm assets."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.services import Services
from gateway.web import pages
from gateway.web.app import create_app
from tests.api.conftest import services  # noqa: F401  (re-exported fixture)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def http(services: Services) -> AsyncIterator[TestClient]:  # noqa: F811
    async with TestClient(TestServer(create_app(services))) as client:
        yield client


def install_web_assets() -> Path:
    """The npm assets GraphiQL needs, installed from the lockfile (`npm ci`) if `make install` has not;
    a skip only where npm cannot run."""
    static = pages.STATIC_DIR
    stamp = static / "node_modules" / ".package-lock.json"
    lock = static / "package-lock.json"
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime and not pages.missing_vendor_files():
        return static / "node_modules"
    if (static / "node_modules").is_symlink():
        # A worktree sharing another checkout's node_modules: its lockfile is newer than the shared
        # stamp only because it was checked out later, and `npm ci` here would empty the link's target
        # (the other checkout's copy) and replace the link. Use the assets when they are all there.
        if not pages.missing_vendor_files():
            return static / "node_modules"
        pytest.skip("node_modules is a link to another checkout and lacks assets: run make install there")
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(
            "npm is not installed: GraphiQL's assets (gateway/web/static, npm ci) cannot be installed"
        )
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(static)],
        check=True,
        timeout=600,
    )
    stamp.touch()
    return static / "node_modules"


@pytest.fixture(scope="session")
def web_assets() -> Path:
    return install_web_assets()
