"""Security headers, added to every response by `ServiceMiddleware`.

| response                     | Content-Security-Policy                                      |
|------------------------------|--------------------------------------------------------------|
| `/ui/…`, `/` (analyst page)  | `default-src 'self'` (+ no plugins, no `<base>`, no framing) |
| `/docs` (Swagger UI)         | `self` (files from `/docs/assets/`) + its inline script's hash |
| everything else (JSON, text) | `default-src 'none'`: a response rendered as a page runs nothing |

Every response also gets `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` (and
`frame-ancestors 'none'`, its CSP form: no clickjacking of the ring explorer) and
`Referrer-Policy: no-referrer` (ids in URLs never leak to other sites). API responses get
`Cache-Control: no-store`: scores and PII must not stay in shared or browser caches. A header a
route already set (the docs page's CSP) is kept.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse

Headers = list[tuple[bytes, bytes]]

CSP = b"content-security-policy"
CACHE_CONTROL = b"cache-control"
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
SWAGGER_ASSETS = "/docs/assets"  # Swagger UI's files, from the swagger-ui-bundle package: no CDN

_COMMON: Headers = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
_PAGE: Headers = [*_COMMON, (CSP, PAGE_CSP.encode())]
_API: Headers = [*_COMMON, (CSP, API_CSP.encode()), (CACHE_CONTROL, b"no-store")]
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def is_page(path: str) -> bool:
    return path == "/" or path == "/ui" or path.startswith("/ui/")


def security_headers(path: str, present: Headers) -> Headers:
    """The headers to add to a response for `path` that already has `present`."""
    extra = _PAGE if is_page(path) else _API
    names = {name.lower() for name, _ in present}
    if not names.intersection(name for name, _ in extra):
        return extra
    return [(name, value) for name, value in extra if name not in names]


def docs_page(openapi_url: str, title: str, assets: str = SWAGGER_ASSETS) -> HTMLResponse:
    """FastAPI's Swagger UI page on locally served assets (works offline), with a CSP naming its
    inline script by hash (no 'unsafe-inline' for scripts: a key typed into "Authorize" is
    worth stealing)."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon-32x32.png",
    )
    html = bytes(page.body).decode()
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    page.headers["content-security-policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    return page
