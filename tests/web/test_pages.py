"""The dashboard at / and GraphiQL at /graphql: served by the gateway itself, every file from this
origin, a strict content-security policy, only allow-listed npm files (issue 16)."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from pytest import approx

from gateway.web import pages
from tests.api import fixture_data as fx
from tests.api.conftest import data_of
from tests.web.conftest import REPO

HTML = {"Accept": "text/html"}
REFERENCE = re.compile(r"""(?:src|href)="([^"]+)"|from\s+'([^']+)'|import\s+'([^']+)'|url\(([^)]+)\)""")


def check_strict(headers) -> None:
    csp = headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'"):
        assert directive in csp
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_the_dashboard_is_served_at_the_root_with_a_strict_policy(http: TestClient) -> None:
    response = await http.get("/")
    assert response.status == 200
    assert response.content_type == "text/html" and response.charset == "utf-8"
    check_strict(response.headers)
    assert '<script type="module" src="/static/dashboard/app.js"></script>' in await response.text()


async def test_the_dashboard_page_names_the_largest_list_page_the_gateway_serves(http: TestClient) -> None:
    # The fixture gateway runs with FUNNEL_MAX_PAGE_SIZE's default, 1000: the user lookup asks no more.
    assert '<meta name="funnelgate-max-page-size" content="1000">' in await (await http.get("/")).text()


async def test_every_file_a_page_references_comes_from_the_gateway(
    http: TestClient, web_assets: Path
) -> None:
    """Walk the two pages, then every script and stylesheet they load: each reference is a path on this
    origin (nothing from a CDN) that the gateway serves, with the policy."""
    seen: set[str] = set()
    todo = ["/", "/graphql"]
    while todo:
        path = todo.pop()
        response = await http.get(path, headers=HTML)
        assert response.status == 200, path
        check_strict(response.headers)
        seen.add(path)
        if response.content_type not in ("text/html", "text/javascript", "text/css") or "/vendor/" in path:
            continue
        base = path.rsplit("/", 1)[0] + "/"
        for match in REFERENCE.finditer(await response.text()):
            ref = next(g for g in match.groups() if g).strip("'\" ")
            if ref.startswith(("data:", "#")) or ref == "{{CONFIG}}":
                continue
            assert not ref.startswith(("http:", "https:", "//")), f"{path} loads {ref} from elsewhere"
            url = ref if ref.startswith("/") else base + ref.removeprefix("./")
            if not url.startswith(("/static/", "/graphql")):
                continue  # a link to another endpoint (/healthz), not a part of the page
            if url not in seen and url not in todo:
                todo.append(url)
    assert {"/static/vendor/graphiql.min.js", "/static/dashboard/api.js", "/static/common/auth.js"} <= seen


@pytest.mark.parametrize(
    "path",
    [
        "/static/vendor/package.json",
        "/static/vendor/react.development.js",
        "/static/vendor/LICENSE",
        "/static/node_modules/react/index.js",
        "/static/vendor.json",
        "/static/package-lock.json",
        "/static/dashboard/index.html",
        "/static/dashboard/.app.js",
        "/static/dashboard/..%2F..%2Fpages.py",
        "/static/graphiql/missing.js",
    ],
)
async def test_nothing_but_the_listed_files_is_served(http: TestClient, path: str) -> None:
    assert (await http.get(path)).status == 404


async def test_files_are_gzipped_once_and_revalidated(http: TestClient, web_assets: Path) -> None:
    url = "/static/vendor/graphiql.min.js"
    raw = (web_assets / pages.vendor_files()["graphiql.min.js"]).read_bytes()
    response = await http.get(url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert response.status == 200 and response.headers["Content-Encoding"] == "gzip"
    assert response.content_type == "text/javascript"
    assert int(response.headers["Content-Length"]) < len(raw) // 3
    etag = response.headers["ETag"]
    again = await http.get(url, headers={"If-None-Match": etag})
    assert again.status == 304
    plain = await http.get(url, headers={"Accept-Encoding": "identity"})
    assert await plain.read() == raw


async def test_graphiql_is_our_page_wired_to_this_endpoint(http: TestClient, web_assets: Path) -> None:
    response = await http.get("/graphql", headers=HTML)
    assert response.status == 200
    check_strict(response.headers)
    page = await response.text()
    assert not re.search(r"unpkg|jsdelivr|cdn\.", page)
    config = json.loads(
        re.search(r'id="graphiql-config" type="application/json">(.*?)</script>', page).group(1)
    )
    assert config["endpoint"] == "/graphql"
    assert "query Overview" in config["defaultQuery"]


async def test_graphiql_default_query_runs_on_the_data(services) -> None:
    data = await data_of(services, pages.DEFAULT_QUERY)
    # The API fixture, by hand (tests/api/fixture_data.py and the funnel/dashboard tests there).
    assert data["pageTypes"] == sorted([fx.HOME, fx.SEARCH, fx.PAYMENT, fx.CONFIRM])
    steps = data["funnel"]["steps"]
    assert [(s["name"], s["users"]) for s in steps] == list(zip(fx.DEFAULT_FUNNEL, [5, 4, 3, 2], strict=True))
    assert [s["conversionRate"] for s in steps] == approx([1.0, 4 / 5, 3 / 4, 2 / 3])
    assert [s["dropOffRate"] for s in steps] == approx([0.0, 1 / 5, 1 / 4, 1 / 3])
    assert data["funnel"]["overallConversionRate"] == approx(2 / 5)
    dashboard = data["dashboard"]
    assert (dashboard["users"], dashboard["sessions"], dashboard["conversions"]) == (5, 6, 2)
    assert (dashboard["conversionRate"], dashboard["revenue"]) == (approx(2 / 6), approx(80.0))


async def test_graphiql_says_how_to_install_it_when_its_files_are_missing(
    http: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "NODE_MODULES", tmp_path)
    response = await http.get("/graphql", headers=HTML)
    assert response.status == 503
    check_strict(response.headers)
    text = await response.text()
    assert "make install" in text and "graphiql/graphiql.min.js" in text
    assert (await http.get("/")).status == 200  # the dashboard needs none of them


def test_the_listed_files_are_packaged_and_copied_into_the_image() -> None:
    needed = [*pages.vendor_files().values(), "react/LICENSE", "graphiql/LICENSE", "@graphiql/react/LICENSE"]
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    globs = package_data["gateway.web"]
    for rel in needed:
        assert any(fnmatch.fnmatch(f"static/node_modules/{rel}", g) for g in globs), rel
    for own in (
        "static/dashboard/app.js",
        "static/graphiql/index.html",
        "static/common/auth.js",
        "static/vendor.json",
    ):
        assert any(fnmatch.fnmatch(own, g) for g in globs), own
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "npm ci" in dockerfile and "copy-vendor.mjs" in dockerfile
    for ignore in (".gitignore", ".dockerignore"):
        assert "gateway/web/static/node_modules" in (REPO / ignore).read_text(), ignore


def test_the_image_stage_copies_the_served_files_and_the_licences(web_assets: Path, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Dockerfile's copy step cannot run here")
    subprocess.run([node, str(pages.STATIC_DIR / "copy-vendor.mjs"), str(tmp_path)], check=True, timeout=60)
    copied = {str(p.relative_to(tmp_path / "node_modules")) for p in tmp_path.rglob("*") if p.is_file()}
    served = set(pages.vendor_files().values())
    licences = copied - served
    assert served <= copied
    assert {"react/LICENSE", "react-dom/LICENSE", "graphiql/LICENSE", "codemirror/LICENSE"} <= licences
    assert all(Path(rel).name.upper().startswith(("LICENSE", "LICENCE")) for rel in licences), licences
