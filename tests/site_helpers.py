"""Helpers for tests/test_site.py: where the built website is and what it should hold.

The website is the HTML that `make book` writes to `_build/html`. The environment
variable `CNNCOURSE_SITE` points the tests at another build (a book built in a
temporary folder, a downloaded CI artifact); the book's `_toc.yml` is then read
from the folder two levels above it (`<book>/_build/html`) when it has one.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from bs4 import BeautifulSoup

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# Chromium flags for a quiet, reproducible headless run: no GPU, no QUIC, and
# none of the background traffic (updates, sync, field trials) that Chromium
# starts by itself and that would show up as failed requests offline.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# <link rel=...> values that make the browser fetch (or connect to) the target.
RESOURCE_RELS = frozenset(
    {"stylesheet", "preload", "modulepreload", "prefetch", "preconnect",
     "dns-prefetch", "icon", "shortcut", "apple-touch-icon", "manifest"}
)
# Elements whose URL attribute the browser loads by itself when it shows the page.
RESOURCE_ATTRS = {
    "script": "src", "img": "src", "iframe": "src", "source": "src",
    "audio": "src", "video": "src", "embed": "src", "object": "data",
}


def site_dir() -> Path:
    """The built website: `$CNNCOURSE_SITE`, else `<repo>/_build/html`."""
    return Path(os.environ.get("CNNCOURSE_SITE", REPO_ROOT / "_build" / "html")).resolve()


def book_root() -> Path:
    """The book's source folder: the one that holds the site's `_toc.yml`."""
    candidate = site_dir().parents[1]
    return candidate if (candidate / "_toc.yml").is_file() else REPO_ROOT


def screenshot_dir() -> Path:
    """`_build/screenshots`, beside the `_build/html` under test."""
    return site_dir().parent / "screenshots"


def require_site() -> Path:
    """Fail (not skip) when there is no built website to check."""
    site = site_dir()
    if not (site / "index.html").is_file():
        pytest.fail(
            f"No built website at {site} (index.html is missing): run `make book` first "
            "(or point CNNCOURSE_SITE at a built `_build/html`).",
            pytrace=False,
        )
    return site


def _walk_toc(entries: list[dict]) -> Iterator[str]:
    for entry in entries or []:
        if "file" in entry:
            yield entry["file"]
        for key in ("parts", "chapters", "sections"):
            yield from _walk_toc(entry.get(key, []))


def toc_files() -> list[str]:
    """Every document in `_toc.yml` (root first), as written there, without suffix."""
    toc = yaml.safe_load((book_root() / "_toc.yml").read_text(encoding="utf8"))
    files = [toc["root"], *_walk_toc(toc.get("parts", [])), *_walk_toc(toc.get("chapters", []))]
    return [str(Path(f).with_suffix("")) if Path(f).suffix in {".md", ".ipynb"} else f
            for f in files]


def is_notebook(doc: str) -> bool:
    """Whether a toc document was built from a `.ipynb` (its source, or Sphinx's copy of it)."""
    return (book_root() / f"{doc}.ipynb").is_file() or (
        site_dir() / "_sources" / f"{doc}.ipynb"
    ).is_file()


def notebook_docs() -> list[str]:
    return [doc for doc in toc_files() if is_notebook(doc)]


def html_pages(site: Path) -> list[Path]:
    """The site's pages, leaving out theme fragments and copied sources."""
    skip = {"_static", "_sources", "_images", "_downloads"}
    return sorted(p for p in site.rglob("*.html")
                  if not skip.intersection(p.relative_to(site).parts))


def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf8"), "html.parser")


def redirect_target(path: Path) -> str | None:
    """The URL that a `<meta http-equiv="Refresh" content="0; url=...">` page sends to."""
    meta = soup(path).find("meta", attrs={"http-equiv": re.compile("^refresh$", re.I)})
    if meta is None:
        return None
    match = re.search(r"url\s*=\s*['\"]?([^'\"]+)", meta.get("content", ""), re.I)
    return match.group(1).strip() if match else None


def is_external(url: str) -> bool:
    """An absolute http(s) URL or a protocol-relative `//host/...` one."""
    parts = urlsplit(url.strip())
    return parts.scheme in {"http", "https"} or (not parts.scheme and url.strip().startswith("//"))


def external_resources(page: BeautifulSoup) -> list[str]:
    """Scripts, stylesheets and other resources that the page loads from another host."""
    found = []
    for link in page.find_all("link", href=True):
        rels = {r.lower() for r in link.get("rel", [])}
        if rels & RESOURCE_RELS and is_external(link["href"]):
            found.append(f'<link rel="{" ".join(sorted(rels))}" href="{link["href"]}">')
    for tag, attr in RESOURCE_ATTRS.items():
        for element in page.find_all(tag, attrs={attr: True}):
            if is_external(element[attr]):
                found.append(f'<{tag} {attr}="{element[attr]}">')
    return found


_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)|@import\s+['"]([^'"]+)""")


def external_css_urls(css: str) -> list[str]:
    """URLs on other hosts that a stylesheet imports or loads (fonts, images)."""
    urls = (a or b for a, b in _CSS_URL.findall(css))
    return [url for url in urls if is_external(url)]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 at a free port; yields the base URL (ending in '/')."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- headless Chromium, shared by the site tests ----------------------------------


class Browser:
    """One Chromium and one local HTTP server for the module, started on first use."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.browser = None
        self.base_url = ""

    def start(self, site: Path):
        if self.browser is None:
            if not CHROMIUM.is_file():
                pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium`", pytrace=False)
            try:
                from playwright.sync_api import sync_playwright
            except ImportError:
                pytest.fail("playwright is missing: `pip install -e '.[test]'`", pytrace=False)
            self.base_url = self._stack.enter_context(serve(site))
            playwright = self._stack.enter_context(sync_playwright())
            self.browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            self._stack.callback(self.browser.close)
        return self.browser

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium and local server per test module (see Browser)."""
    holder = Browser()
    yield holder
    holder.close()
