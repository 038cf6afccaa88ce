"""The explorers and animations on the built website, driven in headless Chromium.

On the website no kernel runs: the page holds the widget state that the build
saved, every precomputed picture included, and the vendored widget manager
renders it and runs the ``jslink``s between controls and stacks. These tests open
each chapter that uses an explorer (``kernel_explorer(``, ``conv_explorer(``,
``augmentation_explorer(``, ``segmentation_explorer(``, ``feature_explorer(`` or ``detection_explorer(`` in its
notebook), move a control the way a reader would (choose from the list, press
an arrow key on a slider), and check that the picture on screen changes to the
precomputed state for the new setting, read from the page's saved widget state.
As in tests/test_site.py, every request to another host is blocked and reported,
and any console error fails the test. Screenshots of each explorer, before and
after, go to ``_build/screenshots`` beside the site.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

try:  # tests/ may or may not be a package
    from . import site_helpers as sh
except ImportError:
    import site_helpers as sh

from cnncourse.viz.augmentation import AUGMENTATION_EXPLORER_CLASS
from cnncourse.viz.detection import DETECTION_EXPLORER_CLASS
from cnncourse.viz.explorers import CONV_EXPLORER_CLASS, KERNEL_EXPLORER_CLASS, STATES_CLASS
from cnncourse.viz.interpret_explorer import FEATURE_EXPLORER_CLASS
from cnncourse.viz.segmentation import SEGMENTATION_EXPLORER_CLASS

pytestmark = pytest.mark.site

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_MANAGER = "_static/vendor/jupyter-widgets/embed-amd.js"
# The SHA-256 of what an <img> shows: its (blob: or data:) URL fetched in the page.
DIGEST_JS = """async (img) => {
  const buffer = await (await fetch(img.src)).arrayBuffer();
  const hash = await crypto.subtle.digest("SHA-256", buffer);
  return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}"""


def _notebook_code(doc: str) -> str:
    """The code of a chapter's notebook: from the book's sources, else the site's copy."""
    for path in (sh.book_root() / f"{doc}.ipynb", sh.site_dir() / "_sources" / f"{doc}.ipynb"):
        if path.is_file():
            cells = json.loads(path.read_text(encoding="utf8"))["cells"]
            return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return ""


def _cases(call: str) -> list:
    docs = [doc for doc in sh.notebook_docs() if call in _notebook_code(doc)]
    return docs or [pytest.param(None, marks=pytest.mark.skip(reason=f"no chapter calls {call}) yet"))]


# --- the saved widget state ------------------------------------------------------------


def _widget_state(path: Path) -> dict[str, dict]:
    tag = sh.soup(path).find("script", attrs={"type": WIDGET_STATE})
    return json.loads(tag.string)["state"] if tag is not None else {}


def _with_class(state: dict[str, dict], css_class: str) -> list[str]:
    return [mid for mid, model in state.items() if css_class in model["state"].get("_dom_classes", [])]


def _children(state: dict[str, dict], mid: str) -> list[str]:
    return [ref.removeprefix("IPY_MODEL_") for ref in state[mid]["state"].get("children", [])]


def _under(state: dict[str, dict], mid: str, model_name: str) -> list[str]:
    """The models of one kind under ``mid`` (itself included), depth first."""
    found = [mid] if state[mid]["model_name"] == model_name else []
    for child in _children(state, mid):
        found += _under(state, child, model_name)
    return found


def _image_digest(state: dict[str, dict], mid: str) -> str:
    """SHA-256 of the PNG that the one Image under ``mid`` holds."""
    images = _under(state, mid, "ImageModel")
    assert len(images) == 1, f"expected one image in the state, found {len(images)}"
    buffer = next(b for b in state[images[0]]["buffers"] if b["path"] == ["value"])
    return hashlib.sha256(base64.b64decode(buffer["data"])).hexdigest()


def _states_stack(state: dict[str, dict], explorer: str) -> str:
    stacks = [m for m in _under(state, explorer, "StackModel") if STATES_CLASS in state[m]["state"]["_dom_classes"]]
    assert len(stacks) == 1, f"the explorer's state has {len(stacks)} stacks of states, expected 1"
    return stacks[0]


def _leaf(state: dict[str, dict], stack: str, indices: list[int]) -> str:
    node = stack
    for index in indices:
        node = _children(state, node)[index]
    return node


def _saved_explorer(doc: str, css_class: str, call: str) -> tuple[dict[str, dict], str, str]:
    """The page's saved widget state, its first explorer of ``css_class`` and that explorer's stack of states."""
    state = _widget_state(sh.site_dir() / f"{doc}.html")
    explorers = _with_class(state, css_class)
    assert explorers, f"{doc} calls {call} but its page saved no widget state for one"
    return state, explorers[0], _states_stack(state, explorers[0])


# --- the browser -------------------------------------------------------------------------


chromium = sh.chromium  # the shared fixture: one browser per module


@pytest.fixture
def open_page(chromium):
    """Open a page of the site; yields ``open(doc) -> (page, problems, requests)``."""
    site = sh.require_site()
    browser = chromium.start(site)
    local = urlsplit(chromium.base_url).netloc
    contexts = []

    def open_doc(doc: str):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        problems: list[str] = []
        requests: list[str] = []

        def only_local(route, request) -> None:
            if urlsplit(request.url).netloc != local:  # what a reader without internet gets
                problems.append(f"request to another host: {request.url}")
                route.abort()
            elif urlsplit(request.url).path == "/favicon.ico":
                # Chromium asks for /favicon.ico by itself when a page names no icon (the
                # theme names none); that request is the browser's, not the page's.
                route.fulfill(status=204, body=b"")
            else:
                route.continue_()

        page = context.new_page()
        context.route(re.compile(r"^https?://"), only_local)
        page.on("request", lambda request: requests.append(request.url))
        page.on("console", lambda message: message.type == "error" and problems.append(
            f"console error: {message.text} ({message.location.get('url', '')})"))
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("requestfailed", lambda request: problems.append(
            f"request failed: {request.url} ({request.failure})"))
        page.on("response", lambda response: response.status >= 400 and problems.append(
            f"HTTP {response.status}: {response.url}"))
        page.goto(chromium.base_url + f"{doc}.html", wait_until="networkidle")
        return page, problems, requests

    yield open_doc
    for context in contexts:
        context.close()


def _rendered(locator, problems: list[str], what: str, timeout: float = 20.0):
    """Wait until ``locator`` is visible; fail with what the browser reported if it never is."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        locator.first.wait_for(state="visible", timeout=timeout * 1000)
    except PlaywrightTimeout:
        pytest.fail(f"{what} did not render within {timeout:.0f} s; the browser reported:\n"
                    + ("\n".join(problems) or "nothing"), pytrace=False)
    return locator


def _digest(locator) -> str:
    return locator.evaluate(DIGEST_JS)


def _wait_for_new_picture(locator, old: str, what: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if locator.count() == 1 and (new := _digest(locator)) != old:
            return new
        locator.page.wait_for_timeout(100)
    pytest.fail(f"{what}: the picture did not change within {timeout:.0f} s", pytrace=False)


def _shot(locator, name: str) -> None:
    shots = sh.screenshot_dir()
    shots.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(shots / f"{name}.png"))


def _check_rendered_offline(problems: list[str], requests: list[str], doc: str) -> None:
    assert any(WIDGET_MANAGER in url for url in requests), (
        f"{doc}: the page never loaded the vendored widget manager ({WIDGET_MANAGER}): "
        "check nb_ipywidgets_js in _config.yml"
    )
    assert not problems, f"{doc}: the browser reported problems:\n" + "\n".join(problems)


# --- the tests ---------------------------------------------------------------------------


def _explorer(page, css_class: str, problems: list, what: str):
    """The first explorer of that class on the page, and the picture it shows once rendered."""
    explorer = page.locator(f".{css_class}").first
    return explorer, _rendered(explorer.locator(f".{STATES_CLASS} img.widget-image"), problems, what)


def _one_slider(explorer, what: str):
    """The explorer's only slider handle, and a function reading the index it stands at."""
    handle = explorer.locator(".noUi-handle")
    assert handle.count() == 1, f"expected one slider, for the {what}"
    return handle, lambda: int(float(handle.get_attribute("aria-valuenow")))


@pytest.mark.parametrize("doc", _cases("kernel_explorer("))
def test_kernel_explorer_list_switches_the_feature_map(open_page, doc: str) -> None:
    state, saved, stack = _saved_explorer(doc, KERNEL_EXPLORER_CLASS, "kernel_explorer")
    dropdown = _under(state, saved, "DropdownModel")[0]
    labels = state[dropdown]["state"]["_options_labels"]

    page, problems, requests = open_page(doc)
    explorer, picture = _explorer(page, KERNEL_EXPLORER_CLASS, problems, f"{doc}: the kernel explorer")
    before = _digest(picture)
    assert before == _image_digest(state, _leaf(state, stack, [0])), "the first kernel's map is not the one shown"
    _shot(explorer, f"explorer-{doc.replace('/', '-')}-kernel-before")

    target = min(2, len(labels) - 1)
    explorer.locator("select").select_option(label=labels[target])  # what a reader does
    after = _wait_for_new_picture(picture, before, f"{doc}: kernel {labels[target]!r}")
    assert after == _image_digest(state, _leaf(state, stack, [target])), (
        f"{doc}: after choosing {labels[target]!r} the picture is not that kernel's precomputed map"
    )
    assert labels[target] in explorer.inner_text()
    _shot(explorer, f"explorer-{doc.replace('/', '-')}-kernel-after")
    _check_rendered_offline(problems, requests, doc)


@pytest.mark.parametrize("doc", _cases("conv_explorer("))
def test_conv_explorer_sliders_switch_the_picture(open_page, doc: str) -> None:
    state, saved, stack = _saved_explorer(doc, CONV_EXPLORER_CLASS, "conv_explorer")

    page, problems, requests = open_page(doc)
    explorer, picture = _explorer(page, CONV_EXPLORER_CLASS, problems, f"{doc}: the conv explorer")
    handles = explorer.locator(".noUi-handle")
    assert handles.count() == 4, "expected sliders for kernel size, stride, padding and dilation"

    def indices() -> list[int]:  # what the sliders show, as indices into their options
        return [int(float(handles.nth(i).get_attribute("aria-valuenow"))) for i in range(4)]

    def shown_state() -> str:
        leaf = _leaf(state, stack, indices())
        if not _under(state, leaf, "ImageModel"):  # a combination that does not fit: a message
            return "error"
        return _image_digest(state, leaf)

    digest = _digest(picture)
    assert digest == shown_state(), "the picture shown is not the precomputed state of the sliders"
    _shot(explorer, f"explorer-{doc.replace('/', '-')}-conv-before")
    # Stride up, padding up, dilation up, kernel size down: every level of the nested stacks.
    for slider, key in ((1, "ArrowRight"), (2, "ArrowRight"), (3, "ArrowRight"), (0, "ArrowLeft")):
        was = indices()
        handles.nth(slider).focus()
        page.keyboard.press(key)  # what a reader does with the keyboard
        now = indices()
        assert now != was and now[slider] != was[slider], f"the arrow key did not move slider {slider}"
        expected = shown_state()
        if expected == "error":
            continue
        digest = _wait_for_new_picture(picture, digest, f"{doc}: sliders at {now}")
        assert digest == expected, f"{doc}: with the sliders at {now} the picture is not that state's"
    formula = explorer.locator(".cnncourse-formula").inner_text()
    assert "/ 2\u230b" in formula, f"the formula does not show stride 2: {formula!r}"
    _shot(explorer, f"explorer-{doc.replace('/', '-')}-conv-after")
    _check_rendered_offline(problems, requests, doc)


@pytest.mark.parametrize("doc", _cases("augmentation_explorer("))
def test_augmentation_explorer_list_and_slider_switch_the_draws(open_page, doc: str) -> None:
    state, saved, stack = _saved_explorer(doc, AUGMENTATION_EXPLORER_CLASS, "augmentation_explorer")
    labels = state[_under(state, saved, "DropdownModel")[0]]["state"]["_options_labels"]

    page, problems, requests = open_page(doc)
    explorer, picture = _explorer(page, AUGMENTATION_EXPLORER_CLASS, problems, f"{doc}: the augmentation explorer")
    handle, strength = _one_slider(explorer, "strength")

    digest = _digest(picture)
    assert digest == _image_digest(state, _leaf(state, stack, [0, strength()])), (
        "the draws shown are not the precomputed state of the first transform at the initial strength"
    )
    _shot(explorer, f"explorer-{doc.replace('/', '-')}-augmentation-before")

    target = min(2, len(labels) - 1)
    explorer.locator("select").select_option(label=labels[target])  # what a reader does
    digest = _wait_for_new_picture(picture, digest, f"{doc}: transform {labels[target]!r}")
    assert digest == _image_digest(state, _leaf(state, stack, [target, strength()])), (
        f"{doc}: after choosing {labels[target]!r} the picture is not that transform's precomputed draws"
    )
    was = strength()
    handle.focus()
    page.keyboard.press("ArrowLeft" if was else "ArrowRight")
    assert strength() != was, "the arrow key did not move the strength slider"
    digest = _wait_for_new_picture(picture, digest, f"{doc}: strength index {strength()}")
    assert digest == _image_digest(state, _leaf(state, stack, [target, strength()])), (
        f"{doc}: with the strength at index {strength()} the picture is not that state's"
    )
    _shot(explorer, f"explorer-{doc.replace('/', '-')}-augmentation-after")
    _check_rendered_offline(problems, requests, doc)


@pytest.mark.parametrize("doc", _cases("segmentation_explorer("))
def test_segmentation_explorer_list_switches_the_canvas(open_page, doc: str) -> None:
    state, saved, stack = _saved_explorer(doc, SEGMENTATION_EXPLORER_CLASS, "segmentation_explorer")
    labels = state[_under(state, saved, "DropdownModel")[0]]["state"]["_options_labels"]

    page, problems, requests = open_page(doc)
    explorer, picture = _explorer(page, SEGMENTATION_EXPLORER_CLASS, problems, f"{doc}: the segmentation explorer")
    before = _digest(picture)
    assert before == _image_digest(state, _leaf(state, stack, [0])), "the first canvas is not the one shown"
    assert "canvas 0:" in explorer.inner_text()
    _shot(explorer, f"explorer-{doc.replace('/', '-')}-segmentation-before")

    target = min(3, len(labels) - 1)
    explorer.locator("select").select_option(label=labels[target])  # what a reader does
    after = _wait_for_new_picture(picture, before, f"{doc}: {labels[target]!r}")
    assert after == _image_digest(state, _leaf(state, stack, [target])), (
        f"{doc}: after choosing {labels[target]!r} the picture is not that canvas's precomputed strip"
    )
    assert f"canvas {target}:" in explorer.inner_text() and "canvas 0:" not in explorer.inner_text()
    _shot(explorer, f"explorer-{doc.replace('/', '-')}-segmentation-after")
    _check_rendered_offline(problems, requests, doc)


@pytest.mark.parametrize("doc", _cases("feature_explorer("))
def test_feature_explorer_image_and_layer_switch_the_picture(open_page, doc: str) -> None:
    state, saved, stack = _saved_explorer(doc, FEATURE_EXPLORER_CLASS, "feature_explorer")
    labels = state[_under(state, saved, "DropdownModel")[0]]["state"]["_options_labels"]
    layers = state[_under(state, saved, "SelectionSliderModel")[0]]["state"]["_options_labels"]

    page, problems, requests = open_page(doc)
    explorer, picture = _explorer(page, FEATURE_EXPLORER_CLASS, problems, f"{doc}: the feature explorer")
    handle, layer = _one_slider(explorer, "layer")

    digest = _digest(picture)
    assert layer() == len(layers) - 1, "the explorer should open on the last layer"
    assert digest == _image_digest(state, _leaf(state, stack, [0, layer()])), (
        "the picture shown is not the precomputed state of the first image at the last layer"
    )
    _shot(explorer, f"explorer-{doc.replace('/', '-')}-feature-before")

    target = min(2, len(labels) - 1)
    explorer.locator("select").select_option(label=labels[target])  # what a reader does
    digest = _wait_for_new_picture(picture, digest, f"{doc}: image {labels[target]!r}")
    assert digest == _image_digest(state, _leaf(state, stack, [target, layer()])), (
        f"{doc}: after choosing {labels[target]!r} the picture is not that image's precomputed state"
    )
    handle.focus()
    page.keyboard.press("ArrowLeft")  # one layer towards the input
    assert layer() == len(layers) - 2, "the arrow key did not move the layer slider"
    digest = _wait_for_new_picture(picture, digest, f"{doc}: layer {layers[layer()]!r}")
    assert digest == _image_digest(state, _leaf(state, stack, [target, layer()])), (
        f"{doc}: at layer {layers[layer()]!r} the picture is not that state's"
    )
    caption = explorer.locator(f".{STATES_CLASS}").inner_text()  # the shown state's text only
    assert f"{layers[layer()]}: " in caption, f"the caption does not name the layer shown: {caption!r}"
    _shot(explorer, f"explorer-{doc.replace('/', '-')}-feature-after")
    _check_rendered_offline(problems, requests, doc)


@pytest.mark.parametrize("doc", _cases("detection_explorer("))
def test_detection_explorer_canvas_and_threshold_switch_the_picture(open_page, doc: str) -> None:
    state, saved, stack = _saved_explorer(doc, DETECTION_EXPLORER_CLASS, "detection_explorer")
    labels = state[_under(state, saved, "DropdownModel")[0]]["state"]["_options_labels"]
    thresholds = state[_under(state, saved, "SelectionSliderModel")[0]]["state"]["_options_labels"]

    page, problems, requests = open_page(doc)
    explorer, picture = _explorer(page, DETECTION_EXPLORER_CLASS, problems, f"{doc}: the detection explorer")
    handle, level = _one_slider(explorer, "score threshold")

    start = level()
    assert 0 < start < len(thresholds) - 1, "the threshold slider should open inside its range"
    digest = _digest(picture)
    assert digest == _image_digest(state, _leaf(state, stack, [0, start])), (
        "the picture shown is not the precomputed state of the first canvas at the first threshold"
    )
    assert "canvas 0, score" in explorer.inner_text()
    _shot(explorer, f"explorer-{doc.replace('/', '-')}-detection-before")

    # a canvas where one step down the slider shows more boxes (on some, no candidate
    # scores between two neighbouring thresholds, and the picture rightly stays)
    target = next((t for t in range(1, len(labels))
                   if _image_digest(state, _leaf(state, stack, [t, start]))
                   != _image_digest(state, _leaf(state, stack, [t, start - 1]))), None)
    assert target is not None, f"{doc}: on no canvas does the next lower threshold change the picture"
    explorer.locator("select").select_option(label=labels[target])  # what a reader does
    digest = _wait_for_new_picture(picture, digest, f"{doc}: {labels[target]!r}")
    assert digest == _image_digest(state, _leaf(state, stack, [target, start])), (
        f"{doc}: after choosing {labels[target]!r} the picture is not that canvas's precomputed state"
    )
    handle.focus()
    page.keyboard.press("ArrowLeft")  # a lower threshold: more candidate boxes
    assert level() == start - 1, "the arrow key did not move the threshold slider"
    digest = _wait_for_new_picture(picture, digest, f"{doc}: threshold {thresholds[level()]!r}")
    assert digest == _image_digest(state, _leaf(state, stack, [target, level()])), (
        f"{doc}: at threshold {thresholds[level()]!r} the picture is not that state's"
    )
    caption = explorer.locator(f".{STATES_CLASS}").inner_text()  # the shown state's text only
    assert f"canvas {target}, score \u2265 {thresholds[level()]}:" in caption, f"wrong caption: {caption!r}"
    _shot(explorer, f"explorer-{doc.replace('/', '-')}-detection-after")
    _check_rendered_offline(problems, requests, doc)


def _animation_docs() -> list:
    site = sh.site_dir()
    docs = [doc for doc in sh.notebook_docs()
            if (site / f"{doc}.html").is_file() and 'class="animation"' in (site / f"{doc}.html").read_text("utf8")]
    return docs or [pytest.param(None, marks=pytest.mark.skip(reason="no chapter shows an animation yet"))]


@pytest.mark.parametrize("doc", _animation_docs())
def test_animation_player_steps_offline(open_page, doc: str) -> None:
    page, problems, _ = open_page(doc)
    player = page.locator("div.animation").first
    image = player.locator("img")
    before = image.get_attribute("src")
    assert before.startswith("data:image/png;base64,"), "the player's image has no first frame"
    player.locator('button[title="Next frame"]').click()
    page.wait_for_function("([img, old]) => img.src !== old", arg=[image.element_handle(), before])
    assert image.get_attribute("src") != before
    assert player.locator("i.fa").count() == 0, "the player still uses Font Awesome icons from a CDN"
    _shot(player, f"animation-{doc.replace('/', '-')}")
    assert not problems, f"{doc}: the browser reported problems:\n" + "\n".join(problems)
