"""The browser pages the gateway serves itself: the dashboard at ``/`` and GraphiQL at ``/graphql``.

Nothing is loaded from anywhere else, and every page and file goes out with a content-security policy
without ``'unsafe-inline'`` or ``'unsafe-eval'`` (:data:`CSP`), so the pages work offline and behind a
strict proxy.

* Our own files live in ``gateway/web/static/{dashboard,graphiql,common}/`` (hand-written, no build step).
* The browser libraries (GraphiQL 3 and React 18, UMD bundles) are installed by ``make install`` with
  ``npm ci`` in ``gateway/web/static/`` from its lockfile. Only the files ``static/vendor.json`` lists
  are served, under ``/static/vendor/<name>``: never the rest of ``node_modules``.
* Each file is read and gzipped once, on its first request (again only if it changes on disk), and
  answered from memory with an ETag.

If the libraries are not installed, the GraphiQL page answers 503 naming the command to run; the
dashboard needs none of them.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import mimetypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).resolve().parent / "static"
NODE_MODULES = STATIC_DIR / "node_modules"
OWN_FOLDERS = ("dashboard", "graphiql", "common")
OWN_SUFFIXES = frozenset({".js", ".css", ".svg", ".png"})
TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

# 'self' covers the same-origin ws:// of subscriptions (CSP level 3). data: fonts and images are
# GraphiQL's inlined Roboto / Fira Code and icons.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self' data:; "
    "img-src 'self' data:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
PAGE_HEADERS = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
ASSET_MAX_AGE_S = 300  # our files change with the gateway; ETags make a revalidation cheap

DEFAULT_QUERY = """# funnelgate: run with Ctrl-Enter (or the play button).
query Overview {
  pageTypes
  funnel {
    overallConversionRate
    steps { name users conversionRate dropOffRate }
  }
  dashboard { users sessions conversions conversionRate revenue }
}

# Subscriptions run over WebSocket (graphql-transport-ws). Replace the query above with:
# subscription Live {
#   realtimeMetrics(intervalSeconds: 2) {
#     at activeUsers eventsPerMinute revenuePerMinute
#     steps { name usersToday }
#   }
# }
"""


def vendor_files() -> dict[str, str]:
    """``/static/vendor/<name>`` -> its path inside node_modules (``static/vendor.json``)."""
    manifest = json.loads((STATIC_DIR / "vendor.json").read_text())
    return dict(manifest["files"])


def missing_vendor_files() -> list[str]:
    return [f"node_modules/{rel}" for rel in vendor_files().values() if not (NODE_MODULES / rel).is_file()]


@dataclass(frozen=True)
class Asset:
    stamp: tuple[int, int]  # (mtime_ns, size) of the file it was read from
    body: bytes
    gzipped: bytes
    content_type: str
    etag: str


@cache
def _vendor_paths() -> dict[str, Path]:
    return {name: NODE_MODULES / rel for name, rel in vendor_files().items()}


_ASSETS: dict[Path, Asset] = {}


def _asset(path: Path) -> Asset | None:
    """The file, read and compressed once per version on disk (shared by every app in the process)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    stamp = (stat.st_mtime_ns, stat.st_size)
    known = _ASSETS.get(path)
    if known is not None and known.stamp == stamp:
        return known
    ctype = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    asset = _ASSETS[path] = _prepared(stamp, path.read_bytes(), ctype)
    return asset


def _prepared(stamp: tuple[int, int], body: bytes, content_type: str) -> Asset:
    """A body as it is served: compressed once, and its ETag."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(stamp, body, gzip.compress(body, 6, mtime=0), content_type, etag)


def _static_path(name: str) -> Path | None:
    """What ``/static/<name>`` may serve: an allow-listed vendor file or one of our own files."""
    folder, _, rest = name.partition("/")
    if folder == "vendor":
        return _vendor_paths().get(rest)
    if folder not in OWN_FOLDERS or "/" in rest or rest.startswith("."):
        return None
    path = STATIC_DIR / folder / rest
    return path if path.suffix in OWN_SUFFIXES else None


def _respond(request: web.Request, asset: Asset, headers: dict[str, str]) -> web.Response:
    headers = {**headers, "ETag": asset.etag, "Vary": "Accept-Encoding"}
    if asset.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    charset = "utf-8" if asset.content_type.startswith("text/") else None
    body = asset.body
    if "gzip" in request.headers.get("Accept-Encoding", "") and len(asset.gzipped) < len(asset.body):
        headers["Content-Encoding"] = "gzip"
        body = asset.gzipped
    return web.Response(body=body, content_type=asset.content_type, charset=charset, headers=headers)


async def static_file(request: web.Request) -> web.StreamResponse:
    path = _static_path(request.match_info["name"])
    asset = _asset(path) if path is not None else None
    if asset is None:
        raise web.HTTPNotFound()
    cache_control = f"public, max-age={ASSET_MAX_AGE_S}"
    return _respond(request, asset, {**SECURITY_HEADERS, "Cache-Control": cache_control})


MAX_PAGE_SIZE = web.AppKey("dashboard_max_page_size", int)
_PAGES: dict[tuple[str, int], Asset] = {}  # (the template's etag, the size) -> the page


def _dashboard_page(template: Asset, max_page_size: int) -> Asset:
    """The dashboard's page naming the gateway's largest list page (its lists ask no more), rendered once
    per template version and size."""
    page = _PAGES.get((template.etag, max_page_size))
    if page is None:
        body = template.body.replace(b"{{MAX_PAGE_SIZE}}", str(max_page_size).encode())
        page = _PAGES[(template.etag, max_page_size)] = _prepared(template.stamp, body, template.content_type)
    return page


async def dashboard(request: web.Request) -> web.StreamResponse:
    template = _asset(STATIC_DIR / "dashboard" / "index.html")
    if template is None:
        raise web.HTTPNotFound()
    return _respond(request, _dashboard_page(template, request.app[MAX_PAGE_SIZE]), PAGE_HEADERS)


def graphiql_page(endpoint: str = "/graphql") -> web.Response:
    """GraphiQL wired to ``endpoint`` (HTTP and graphql-transport-ws), or 503 if it is not installed."""
    missing = missing_vendor_files()
    if missing:
        text = (
            "<!doctype html><meta charset=utf-8><title>GraphiQL is not installed</title>"
            "<p>GraphiQL's files are not installed. Run <code>make install</code> (it runs "
            "<code>npm ci</code> in <code>gateway/web/static/</code>). Missing:</p><pre>"
            + html.escape("\n".join(missing))
            + "</pre>"
        )
        return web.Response(text=text, content_type="text/html", status=503, headers=PAGE_HEADERS)
    template = (STATIC_DIR / "graphiql" / "index.html").read_text()
    # Page data in a <script type="application/json"> element, which is never executed (so the CSP needs
    # no 'unsafe-inline'); only "<" could end it early, and JSON may write it as \u003c.
    config = json.dumps({"endpoint": endpoint, "defaultQuery": DEFAULT_QUERY}).replace("<", "\\u003c")
    return web.Response(
        text=template.replace("{{CONFIG}}", config), content_type="text/html", headers=PAGE_HEADERS
    )


def add_routes(app: web.Application, max_page_size: int) -> None:
    app[MAX_PAGE_SIZE] = max_page_size
    app.router.add_get("/", dashboard)
    app.router.add_get(r"/static/{name:[A-Za-z0-9_-]+/[A-Za-z0-9._-]+}", static_file)
