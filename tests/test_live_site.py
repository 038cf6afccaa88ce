"""The live page (book/06b_live_cnn.md): trained networks running in headless Chromium.

Over http on 127.0.0.1, as the site is published, with every request to another
host blocked and every console error reported:

* the page's own code (``window.cnncourseLive.predict``, the path the figure
  uses) gives the same logits as PyTorch for 20 Fashion-MNIST test images, for
  every network on the page (max abs difference <= 1e-4);
* strokes drawn on the canvas with the mouse, and with a finger on a phone,
  change the prediction, and the figure fits a 390-pixel-wide screen;
* the page, runtime and every network included, weighs <= 15 MB as sent
  (Resource Timing's encodedBodySize), and the first prediction is on screen
  <= 2 s after the page's load event (the time from the navigation's start is
  written to ``_build/screenshots/live-measurements.json`` too);
* opened from ``file://``, where browsers run no WebAssembly, it says how to
  serve the folder;
* no other page loads the runtime or the page's script, and the exported files
  match their SHA256SUMS and the zoo's checkpoints.

Screenshots go to ``_build/screenshots`` beside the site.
"""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import urlsplit

import pytest
import torch

try:  # tests/ may or may not be a package
    from . import site_helpers as sh
except ImportError:
    import site_helpers as sh

pytestmark = pytest.mark.site

DOC = "book/06b_live_cnn"
LIVE = "_static/live"
RUNTIME = "_static/vendor/onnxruntime-web/"
MAX_LOGIT_DIFFERENCE = 1e-4
MAX_PAGE_BYTES = 15_000_000
MAX_FIRST_PREDICTION_MS = 2_000
IMAGES = 20
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 1000}
# What the page and everything it loaded weigh, as sent: Resource Timing's encodedBodySize.
WEIGHT_JS = """() => [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
    .reduce((total, entry) => total + (entry.encodedBodySize || 0), 0)"""

chromium = sh.chromium  # the shared fixture: one browser and one server per module


def _models() -> dict:
    path = sh.site_dir() / LIVE / "models.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: the book was built without _ext/live_models.py", pytrace=False)
    return json.loads(path.read_text())


@pytest.fixture
def open_live(chromium):
    """Open the live page; yields ``open(viewport, **context_options) -> (page, problems)``, ready."""
    site = sh.require_site()
    assert (site / f"{DOC}.html").is_file(), f"{DOC}.html was not built: is it in _toc.yml?"
    browser = chromium.start(site)
    local = urlsplit(chromium.base_url).netloc
    contexts = []

    def open_page(viewport: dict = DESKTOP, **options):
        context = browser.new_context(viewport=viewport, **options)
        contexts.append(context)
        problems: list[str] = []

        def only_local(route, request) -> None:
            if urlsplit(request.url).netloc != local:  # what a reader without internet gets
                problems.append(f"request to another host: {request.url}")
                route.abort()
            elif urlsplit(request.url).path == "/favicon.ico":
                route.fulfill(status=204, body=b"")  # the browser's own request, not the page's
            else:
                route.continue_()

        context.route(re.compile(r"^https?://"), only_local)
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))
        page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
        page.goto(chromium.base_url + f"{DOC}.html", wait_until="load")
        status = page.evaluate("() => window.cnncourseLive ? window.cnncourseLive.ready : null")
        assert status is not None, "the page has no window.cnncourseLive: live.js did not run"
        assert status["ok"], f"the live figure did not start: {status}\n" + "\n".join(problems)
        return page, problems

    yield open_page
    for context in contexts:
        context.close()


def _shot(page, name: str, selector: str = "#cnncourse-live") -> None:
    shots = sh.screenshot_dir()
    shots.mkdir(parents=True, exist_ok=True)
    page.locator(selector).screenshot(path=str(shots / f"{name}.png"))


# --- the numbers ---------------------------------------------------------------------


def test_page_logits_equal_pytorch_for_every_network(open_live):
    from cnncourse import zoo
    from cnncourse.data import fashion_mnist

    meta = _models()
    names = [m["name"] for m in meta["models"]]
    assert "lenet5" in names and {"vgg_small", "resnet20"} & set(names), names
    X, y = fashion_mnist().test.tensors
    images = X[:IMAGES]
    pixels = images.flatten(1).tolist()  # float32 values, exact as JavaScript numbers
    page, problems = open_live()
    differences = {}
    for entry in meta["models"]:
        name = entry["name"]
        assert entry["checkpoint_sha256"] == zoo.load_info(name).sha256, (
            f"{name}: the site was exported from another checkpoint than this zoo's")
        got = page.evaluate("async ([all, name]) => { const out = [];"
                            " for (const p of all) out.push((await window.cnncourseLive.predict(p, name)).logits);"
                            " return out; }", [pixels, name])
        with torch.no_grad():
            expected = zoo.load_pretrained(name)(images)
        difference = differences[name] = (torch.tensor(got) - expected).abs().max().item()
        assert difference <= MAX_LOGIT_DIFFERENCE, f"{name}: the page's logits differ from PyTorch's by {difference:.2e}"
        accuracy = (torch.tensor(got).argmax(1) == y[:IMAGES]).float().mean().item()
        assert accuracy >= 0.7, f"{name}: only {accuracy:.0%} of {IMAGES} test images right in the page"
    sh.screenshot_dir().mkdir(parents=True, exist_ok=True)
    (sh.screenshot_dir() / "live-logit-differences.json").write_text(json.dumps(differences, indent=1))
    assert not problems, "the browser reported problems:\n" + "\n".join(problems)


# --- drawing -----------------------------------------------------------------------------


def _logits(page) -> list[float]:
    return page.evaluate("() => window.cnncourseLive.lastResult.logits")


def _wait_for_new_logits(page, old: list[float]) -> list[float]:
    page.wait_for_function("(old) => { const r = window.cnncourseLive.lastResult;"
                           " return r && r.logits.some((v, k) => v !== old[k]); }", arg=old, timeout=10_000)
    return _logits(page)


def _shown_top_class(page) -> str:
    return page.locator("#cnncourse-live .live-top5 .live-class").first.inner_text()


def test_drawing_on_the_canvas_changes_the_prediction(open_live):
    meta = _models()
    page, problems = open_live()
    before = _logits(page)
    page.get_by_role("button", name="Clear").click()
    blank = _wait_for_new_logits(page, before)
    canvas = page.locator("#cnncourse-live canvas.live-canvas")
    box = canvas.bounding_box()
    # A trouser: two long bars joined at the top, in the canvas's 28 x 28 grid.
    for x0, y0, x1, y1 in [(9, 4, 9, 25), (10, 4, 10, 25), (18, 4, 18, 25), (17, 4, 17, 25), (9, 4, 18, 4)]:
        page.mouse.move(box["x"] + x0 / 28 * box["width"], box["y"] + y0 / 28 * box["height"])
        page.mouse.down()
        page.mouse.move(box["x"] + x1 / 28 * box["width"], box["y"] + y1 / 28 * box["height"], steps=12)
        page.mouse.up()
    drawn = _wait_for_new_logits(page, blank)
    page.wait_for_timeout(300)  # the last strokes' prediction
    drawn = _logits(page)
    change = max(abs(a - b) for a, b in zip(drawn, blank))
    assert change > 1.0, f"drawing changed the logits by only {change:.3f}"
    top = max(range(10), key=lambda k: drawn[k])
    assert _shown_top_class(page) == meta["classes"][top], "the bars do not show the page's own top class"
    ink = page.evaluate("() => document.querySelector('#cnncourse-live .live-source').textContent")
    assert ink.startswith("Your drawing")
    _shot(page, "live-drawn-trouser")
    assert not problems, "the browser reported problems:\n" + "\n".join(problems)


def test_picker_and_model_toggle_update_the_figure(open_live):
    meta = _models()
    page, problems = open_live()
    start = _logits(page)
    thumbs = page.locator("#cnncourse-live .live-thumb")
    assert thumbs.count() == len(json.loads((sh.site_dir() / LIVE / "samples.json").read_text())["labels"])
    trouser = page.get_by_role("button", name=re.compile(r"Test image \d+: Trouser")).first
    trouser.click()
    logits = _wait_for_new_logits(page, start)
    for entry in meta["models"][1:]:
        page.get_by_role("radio", name=re.compile(re.escape(entry["title"]))).check()
        page.wait_for_function("(name) => window.cnncourseLive.lastResult.model === name", arg=entry["name"])
        logits = _logits(page)
        shown = page.locator("#cnncourse-live .live-layer").count()
        assert shown == len(entry["outputs"]) - 1, f"{entry['name']}: {shown} panels of feature maps"
        assert _shown_top_class(page) == "Trouser", f"{entry['name']} does not call the test trouser a trouser"
        verdict = page.locator("#cnncourse-live .live-verdict").inner_text()
        assert verdict.startswith(f"{entry['title']} says: Trouser"), verdict
        _shot(page, f"live-{entry['name']}-trouser")
    # One colour scale per map instead of per layer: the same numbers, another picture.
    mosaic = page.locator("#cnncourse-live canvas.live-mosaic").last
    before = mosaic.evaluate("(c) => c.toDataURL()")
    page.get_by_role("radio", name="one per map").check()
    page.wait_for_function("([c, old]) => c.toDataURL() !== old", arg=[mosaic.element_handle(), before])
    assert _logits(page) == logits
    assert not problems, "the browser reported problems:\n" + "\n".join(problems)


def test_a_finger_draws_on_a_phone_and_the_figure_fits(open_live):
    page, problems = open_live(PHONE, has_touch=True, is_mobile=True, device_scale_factor=3)
    overflow = page.evaluate("() => { const r = document.getElementById('cnncourse-live');"
                             " return [r.scrollWidth, r.clientWidth, document.documentElement.scrollWidth]; }")
    assert overflow[0] <= overflow[1] + 1, f"the figure is wider than its column on a phone: {overflow}"
    assert overflow[2] <= PHONE["width"] + 1, f"the page scrolls sideways on a phone: {overflow}"
    canvas = page.locator("#cnncourse-live canvas.live-canvas")
    box = canvas.bounding_box()
    assert box["width"] >= 250 and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    for selector in (".live-button", ".live-thumb"):
        small = page.evaluate("(s) => [...document.querySelectorAll('#cnncourse-live ' + s)]"
                              ".filter(b => b.getBoundingClientRect().height < 24).length", selector)
        assert not small, f"{small} {selector} controls are too small for a finger"
    before = _logits(page)
    # A finger's stroke, as touch pointer events (Playwright's touchscreen only taps).
    page.evaluate("""(canvas) => {
      const box = canvas.getBoundingClientRect();
      const at = (gx, gy, type) => canvas.dispatchEvent(new PointerEvent(type, {
        pointerId: 7, pointerType: 'touch', isPrimary: true, bubbles: true, cancelable: true, button: 0,
        buttons: type === 'pointerup' ? 0 : 1,
        clientX: box.left + gx / 28 * box.width, clientY: box.top + gy / 28 * box.height}));
      at(6, 6, 'pointerdown');
      for (let k = 0; k <= 20; k++) at(6 + k * 0.8, 6 + k * 0.8, 'pointermove');
      at(22, 22, 'pointerup');
    }""", canvas.element_handle())
    after = _wait_for_new_logits(page, before)
    assert max(abs(a - b) for a, b in zip(after, before)) > 0.1
    page.screenshot(path=str(sh.screenshot_dir() / "live-phone.png"), full_page=True)
    assert not problems, "the browser reported problems:\n" + "\n".join(problems)


# --- weight and speed ----------------------------------------------------------------------


def test_page_weight_and_time_to_first_prediction(open_live):
    meta = _models()
    page, problems = open_live()
    first = page.evaluate("() => window.cnncourseLive.timing.firstPrediction")
    for entry in meta["models"]:  # load every network, as a reader who tries them all
        page.get_by_role("radio", name=re.compile(re.escape(entry["title"]))).check()
        page.wait_for_function("(name) => window.cnncourseLive.lastResult.model === name", arg=entry["name"])
    page.wait_for_load_state("networkidle")
    weight = page.evaluate(WEIGHT_JS)
    urls = page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)")
    loaded = page.evaluate("() => performance.getEntriesByType('navigation')[0].loadEventEnd")
    # Written before the checks, so that a slow run leaves its numbers behind.
    sh.screenshot_dir().mkdir(parents=True, exist_ok=True)
    (sh.screenshot_dir() / "live-measurements.json").write_text(json.dumps(
        {"page_bytes": weight, "first_prediction_ms": first, "load_event_ms": loaded,
         "steps_ms": page.evaluate("() => window.cnncourseLive.timing")}, indent=1))
    assert any(RUNTIME in url for url in urls), "the page never loaded the vendored runtime"
    assert not any(url.endswith(".wasm") for url in urls), "the runtime fetched an uncompressed .wasm by itself"
    assert weight <= MAX_PAGE_BYTES, f"the live page loads {weight / 1e6:.2f} MB, more than {MAX_PAGE_BYTES / 1e6:.0f} MB"
    assert first - loaded <= MAX_FIRST_PREDICTION_MS, (
        f"the first prediction came {first - loaded:.0f} ms after the page's load event "
        f"({first:.0f} ms after the navigation started)")
    assert not problems, "the browser reported problems:\n" + "\n".join(problems)


# --- file:// ------------------------------------------------------------------------------


def test_opened_from_a_file_it_says_how_to_serve_the_folder(chromium):
    site = sh.require_site()
    browser = chromium.start(site)
    context = browser.new_context(viewport=DESKTOP)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on("console", lambda m: m.type == "error" and "live" in (m.location.get("url") or "")
                and errors.append(f"console error from the live script: {m.text}"))
        page.goto((site / f"{DOC}.html").as_uri(), wait_until="load")
        status = page.evaluate("() => window.cnncourseLive.ready")
        assert status == {"ok": False, "reason": "file"}, status
        message = page.locator("#cnncourse-live").inner_text()
        assert "python -m http.server" in message and str(site) in message, message
        assert f"http://localhost:8000/{DOC}.html" in message, message
        _shot(page, "live-file-url")
    finally:
        context.close()
    assert not errors, "\n".join(errors)


# --- the build's output ---------------------------------------------------------------------


def test_only_the_live_page_loads_the_runtime_and_its_script():
    site = sh.require_site()
    carriers = []
    for path in sh.html_pages(site):
        sources = [tag.get("src", "") for tag in sh.soup(path).find_all("script")]
        sources += [tag.get("href", "") for tag in sh.soup(path).find_all("link")]
        if any("live/live." in s or "onnxruntime" in s for s in sources):
            carriers.append(str(path.relative_to(site).with_suffix("")))
    assert carriers == [DOC], f"pages that load the live script or the runtime: {carriers}"


def test_exported_files_match_their_checksums_and_the_zoo():
    from cnncourse import zoo

    folder = sh.site_dir() / LIVE
    meta = _models()
    sums = dict(reversed(line.split()) for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert {m["file"] for m in meta["models"]} | {"models.json", "samples.json"} <= set(sums)
    for file, digest in sums.items():
        assert hashlib.sha256((folder / file).read_bytes()).hexdigest() == digest, f"{file} does not match SHA256SUMS"
    zoo_sums = dict(reversed(line.split()) for line in (zoo.zoo_dir() / "SHA256SUMS").read_text().splitlines())
    for entry in meta["models"]:
        assert entry["checkpoint_sha256"] == zoo_sums[entry["checkpoint"]], entry["name"]
        names = [o["name"] for o in entry["outputs"]]
        assert names[0] == "logits" and len(names) >= 3, names
