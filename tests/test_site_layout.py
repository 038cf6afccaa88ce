"""The website as a reader meets it, on a phone and on a laptop, in headless Chromium.

Over http on 127.0.0.1 (as the site is published), at 390 x 844 and 1280 x 1000:
the navigation opens on a phone and collapses on a desktop; code and text outputs
fit their column at 1280 px (at most 2% of either may not); figures are shown at
their own size (a wider one would be scaled down, fonts and all), with a numbered
caption and alt text in words; solutions are labelled as such; pages stay light
enough for a phone (chapter 1 <= 4 MB, a page with an explorer <= 6 MB); nothing
is requested from another host and nothing is logged as an error.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

try:  # tests/ may or may not be a package
    from . import site_helpers as sh
except ImportError:
    import site_helpers as sh

pytestmark = pytest.mark.site

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 1000}
NOTEBOOK_DOCS = sh.notebook_docs()
MAX_WIDE_SHARE = 0.02
CHAPTER_1_BYTES = 4_000_000
EXPLORER_PAGE_BYTES = 6_000_000
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# An alt text that is a file name or a path is no description of a picture.
PATH_LIKE = re.compile(r"(^|/)[\w.-]+\.(png|jpe?g|svg|gif)$|^\.\.?/|_images/", re.I)

chromium = sh.chromium  # the shared fixture: one browser and one server per module


def _open(chromium: sh.Browser, doc: str, viewport: dict, problems: list[str] | None = None):
    """A new page at ``viewport`` showing ``doc``; errors and other hosts go to ``problems``."""
    browser = chromium.start(sh.require_site())
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    if problems is not None:
        local = urlsplit(chromium.base_url).netloc
        page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("request", lambda r: urlsplit(r.url).netloc not in ("", local)
                and r.url.startswith("http") and problems.append(f"request to another host: {r.url}"))
    page.goto(chromium.base_url + f"{doc}.html", wait_until="networkidle")
    return context, page


# --- navigation -------------------------------------------------------------------


def test_the_menu_opens_the_chapter_list_on_a_phone(chromium):
    context, page = _open(chromium, NOTEBOOK_DOCS[0], PHONE)
    try:
        page.locator(".bd-header-article .primary-toggle").click()
        page.wait_for_function("document.querySelector('#pst-primary-sidebar-modal').open")
        link = page.locator("#pst-primary-sidebar-modal a", has_text=re.compile("Pooling")).first
        assert link.is_visible(), "the chapter list did not open"
        page.keyboard.press("Escape")
        page.locator(".bd-header-article .secondary-toggle").click()
        page.wait_for_function("document.querySelector('#pst-secondary-sidebar-modal').open")
    finally:
        context.close()


def test_the_menu_collapses_the_sidebar_on_a_desktop_and_no_empty_bar_is_left(chromium):
    context, page = _open(chromium, NOTEBOOK_DOCS[0], DESKTOP)
    try:
        header = page.evaluate("() => { const h = document.querySelector('#pst-header');"
                               " return h ? h.getBoundingClientRect().height : 0; }")
        assert header == 0, f"an empty {header}-pixel bar sits above the page"
        width = page.evaluate("() => document.querySelector('.bd-article-container').clientWidth")
        page.locator(".bd-header-article .primary-toggle").click()
        page.wait_for_timeout(500)  # the sidebar slides away
        assert page.evaluate("() => document.querySelector('#pst-primary-sidebar')"
                             ".classList.contains('pst-sidebar-hidden')")
        assert page.evaluate("() => document.querySelector('.bd-article-container').clientWidth") > width
    finally:
        context.close()


# --- what fits at 1280 px -----------------------------------------------------------

_MEASURE = """() => {
  const wide = e => e.scrollWidth > e.clientWidth + 1;
  const code = [...document.querySelectorAll('div.cell_input pre')];
  const text = [...document.querySelectorAll('div.cell_output div.output pre')];
  const images = [...document.querySelectorAll('div.cell_output img')].map(img => ({
      src: img.getAttribute('src').slice(-60), alt: img.getAttribute('alt') || '',
      natural: img.naturalWidth, shown: img.getBoundingClientRect().width,
      caption: (img.closest('figure') && img.closest('figure').querySelector('.caption-number'))
               ? img.closest('figure').querySelector('.caption-number').textContent : ''}));
  const toggles = [...document.querySelectorAll('section#exercises details summary, #exercises details summary')]
      .map(s => s.textContent.trim());
  return {code: code.length, wideCode: code.filter(wide).length, text: text.length,
          wideText: text.filter(wide).length, images, toggles};
}"""


@pytest.fixture(scope="module")
def desktop_pages(chromium) -> dict[str, dict]:
    measured = {}
    for doc in NOTEBOOK_DOCS:
        context, page = _open(chromium, doc, DESKTOP)
        try:
            measured[doc] = page.evaluate(_MEASURE)
        finally:
            context.close()
    return measured


def test_code_and_text_outputs_fit_their_column(desktop_pages):
    code = sum(p["code"] for p in desktop_pages.values())
    wide_code = {d: p["wideCode"] for d, p in desktop_pages.items() if p["wideCode"]}
    text = sum(p["text"] for p in desktop_pages.values())
    wide_text = {d: p["wideText"] for d, p in desktop_pages.items() if p["wideText"]}
    assert sum(wide_code.values()) <= MAX_WIDE_SHARE * code, (
        f"{sum(wide_code.values())} of {code} code cells are wider than the column at 1280 px: {wide_code} "
        "(format the chapter to 79 characters: ruff format, ruff check)")
    assert sum(wide_text.values()) <= MAX_WIDE_SHARE * text, (
        f"{sum(wide_text.values())} of {text} text outputs are wider than the column: {wide_text}")


@pytest.mark.parametrize("doc", NOTEBOOK_DOCS)
def test_figures_are_shown_at_their_size_with_a_numbered_caption_and_alt_text(desktop_pages, doc):
    images = desktop_pages[doc]["images"]
    scaled = [i["src"] for i in images if i["natural"] > i["shown"] + 1]
    assert not scaled, (f"{doc}: figures wider than the column are scaled down, fonts and all: {scaled} "
                        "(keep figures within viz.FIGURE_WIDTH inches)")
    uncaptioned = [i["src"] for i in images if not i["caption"].startswith(("Figure", "Fig."))]
    assert not uncaptioned, f"{doc}: figures without a numbered caption (mystnb.figure metadata): {uncaptioned}"
    bad_alt = [(i["src"], i["alt"]) for i in images if not i["alt"].strip() or PATH_LIKE.search(i["alt"].strip())]
    assert not bad_alt, f"{doc}: figures whose alt text is empty or a file name (mystnb.image.alt): {bad_alt}"


@pytest.mark.parametrize("doc", NOTEBOOK_DOCS)
def test_every_solution_toggle_says_solution(desktop_pages, doc):
    toggles = desktop_pages[doc]["toggles"]
    assert toggles, f"{doc}: no folded solution in the Exercises section"
    wrong = [t for t in toggles if not t.startswith(("Solution", "Hide solution"))]
    assert not wrong, f"{doc}: toggles that do not say 'Solution N.M' (mystnb.code_prompt_show): {wrong}"


# --- weight, errors, other hosts ---------------------------------------------------


def _explorer_docs() -> list[str]:
    site = sh.site_dir()
    return [doc for doc in NOTEBOOK_DOCS
            if (site / f"{doc}.html").is_file() and WIDGET_STATE in (site / f"{doc}.html").read_text("utf8")]


# What the page and everything it loaded weigh, as sent: Resource Timing's encodedBodySize.
_WEIGHT = """() => [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
    .reduce((total, entry) => total + (entry.encodedBodySize || 0), 0)"""


@pytest.mark.parametrize("doc", [NOTEBOOK_DOCS[0], *_explorer_docs()])
def test_pages_stay_light_and_load_cleanly_on_a_phone(chromium, doc):
    problems: list[str] = []
    context, page = _open(chromium, doc, PHONE, problems)
    try:
        page.wait_for_timeout(1000)  # MathJax and the widget manager fetch fonts and modules on demand
        page.wait_for_load_state("networkidle")
        weight = page.evaluate(_WEIGHT)
    finally:
        context.close()
    limit = CHAPTER_1_BYTES if doc == NOTEBOOK_DOCS[0] else EXPLORER_PAGE_BYTES
    assert weight <= limit, f"{doc} loads {weight / 1e6:.2f} MB, more than {limit / 1e6:.0f} MB"
    assert not problems, f"{doc}: " + "\n".join(problems)


def test_kernel_boxes_are_read_only_on_the_website(chromium):
    docs = [doc for doc in _explorer_docs() if "kernel_explorer(" in (sh.book_root() / f"{doc}.ipynb").read_text()]
    if not docs:
        pytest.skip("no chapter uses the kernel explorer")
    context, page = _open(chromium, docs[0], DESKTOP)
    try:
        page.wait_for_selector(".cnncourse-live-only input")
        states = page.evaluate("() => [...document.querySelectorAll('.cnncourse-live-only input')]"
                               ".map(i => i.readOnly)")
        assert states and all(states), "the kernel explorer's boxes look editable but change nothing here"
    finally:
        context.close()
