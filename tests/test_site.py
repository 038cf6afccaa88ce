"""Checks of the built website (`make book`, then `make check-site`).

Every test here reads `_build/html` (or `$CNNCOURSE_SITE`) and fails, rather than
skips, when it is missing. The last one opens the pages in headless Chromium
(Debian's `/usr/bin/chromium`, driven by Playwright) over a local HTTP server, with
every request to another host blocked, as a reader without internet would see them.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

try:  # tests/ may or may not be a package
    from . import site_helpers as sh
except ImportError:
    import site_helpers as sh

pytestmark = pytest.mark.site

TOC_DOCS = sh.toc_files()
NOTEBOOK_DOCS = sh.notebook_docs()
# What the browser opens: the site's entry point, then every page of the book.
BROWSER_PAGES = ["index", *TOC_DOCS]
TRACEBACK_TEXT = "Traceback (most recent call last)"


def _page(site: Path, doc: str) -> Path:
    return site / f"{doc}.html"


@pytest.mark.parametrize("doc", TOC_DOCS)
def test_toc_entry_has_a_page(doc: str) -> None:
    site = sh.require_site()
    assert _page(site, doc).is_file(), (
        f"_toc.yml lists {doc!r} but {_page(site, doc)} was not built: does the source "
        "exist, and did `make book` finish?"
    )


def test_the_book_has_notebook_chapters() -> None:
    sh.require_site()
    assert NOTEBOOK_DOCS, "no chapter in _toc.yml was built from a .ipynb notebook"


@pytest.mark.parametrize("doc", NOTEBOOK_DOCS)
def test_notebook_page_shows_executed_outputs(doc: str) -> None:
    site = sh.require_site()
    path = _page(site, doc)
    assert path.is_file(), f"{path} was not built"
    page = sh.soup(path)

    outputs = page.select("div.cell_output")
    assert outputs, f"{doc}: no cell output (div.cell_output): was the notebook executed?"

    images = [img for output in outputs for img in output.find_all("img")]
    assert images, f"{doc}: no figure (img) in any cell output"
    for img in images:
        src = img.get("src", "")
        if src.startswith("data:"):
            assert src.startswith("data:image/"), f"{doc}: image data that is not an image: {src[:40]}"
            continue
        target = (path.parent / unquote(urlsplit(src).path)).resolve()
        assert target.is_file() and target.stat().st_size > 0, (
            f"{doc}: figure {src!r} points at a missing or empty file"
        )

    errors = [el.get_text() for el in page.find_all(class_=re.compile("traceback"))]
    errors += [el.get_text() for el in page.select("div.output.stderr") if "Error" in el.get_text()]
    if not errors and TRACEBACK_TEXT in page.get_text():
        errors.append(TRACEBACK_TEXT)
    assert not errors, f"{doc}: the page shows an error output:\n" + "\n".join(
        error[:2000] for error in errors
    )


def test_no_page_loads_anything_from_another_host() -> None:
    site = sh.require_site()
    offenders = {}
    for path in sh.html_pages(site):
        found = sh.external_resources(sh.soup(path))
        if found:
            offenders[str(path.relative_to(site))] = found
    for path in sorted(site.rglob("*.css")):
        found = sh.external_css_urls(path.read_text(encoding="utf8", errors="replace"))
        if found:
            offenders[str(path.relative_to(site))] = found
    assert not offenders, (
        "the website must work offline, but these pages load scripts, stylesheets or "
        "other resources from the internet (vendor them under _static/vendor/, see "
        f"tools/vendor_js.sh): {offenders}"
    )


# --- headless Chromium ---------------------------------------------------------


chromium = sh.chromium  # the shared fixture: one browser per module


def _record_problems(context, page, local_host: str, problems: list[str]) -> None:
    """Block requests to other hosts, and note every error the page reports."""

    def only_local(route, request) -> None:
        if urlsplit(request.url).netloc == local_host:
            route.continue_()
        else:  # what a reader without internet gets
            problems.append(f"request to another host: {request.url}")
            route.abort()

    def on_console(message) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text} ({message.location.get('url', '')})")

    def on_response(response) -> None:
        if response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.url}")

    context.route(re.compile(r"^https?://"), only_local)
    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(
        f"request failed: {request.url} ({request.failure})"))
    page.on("response", on_response)


def _math_problems(page) -> list[str]:
    """Math that MathJax left unrendered or rendered as an error."""
    problems = []
    math = page.locator(".math").count()
    unrendered = page.locator(".math:not(:has(mjx-container))").count()
    if unrendered:
        problems.append(f"MathJax did not render {unrendered} of {math} math elements")
    # A TeX error renders as <merror>; an unknown macro (MathJax's `noundefined`
    # package) as red text in the MathML that MathJax keeps for screen readers.
    problems += [f"TeX error: {text}" for text in page.locator("mjx-merror").all_inner_texts()]
    problems += [
        f"TeX error: undefined macro {text}"
        for text in page.locator('mjx-assistive-mml mtext[mathcolor="red"]').all_text_contents()
        if text.startswith("\\")
    ]
    return problems


@pytest.mark.parametrize("doc", BROWSER_PAGES)
def test_page_renders_in_chromium_without_errors(chromium: sh.Browser, doc: str) -> None:
    site = sh.require_site()
    browser = chromium.start(site)
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        _record_problems(context, page, urlsplit(chromium.base_url).netloc, problems)

        url = chromium.base_url + f"{doc}.html"
        page.goto(url, wait_until="networkidle")
        # index.html is a redirect (<meta http-equiv="Refresh">) to the root page.
        target = _page(site, doc).is_file() and sh.redirect_target(_page(site, doc))
        if target:
            page.wait_for_url(urljoin(url, target))
            page.wait_for_load_state("networkidle")
        # MathJax typesets after the page has loaded, fetching TeX extensions on the
        # way (startup.promise waits for them); then the browser fetches the fonts.
        page.evaluate(
            "async () => { if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
            " { await MathJax.startup.promise; } await document.fonts.ready; }"
        )

        if not page.title().strip():
            problems.append("the page has no title")
        problems += _math_problems(page)

        shots = sh.screenshot_dir()
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / f"{doc.replace('/', '-')}.png"), full_page=True)
    finally:
        context.close()

    assert not problems, f"{doc}: the browser reported problems:\n" + "\n".join(problems)
