"""The live page's networks, exported when the book is built, and its script on that page only.

The interlude ``book/06b_live_cnn.md`` runs zoo networks in the reader's
browser (ONNX Runtime Web, vendored under ``_static/vendor/onnxruntime-web/``).
This extension does two things for it:

1. After every HTML build it writes what the page loads into
   ``_build/html/_static/live/`` with :func:`cnncourse.export.export_live`: one
   ONNX file per network, exported from the committed zoo checkpoint with
   ``torch.onnx.export`` (feature maps as extra outputs), ``samples.json`` (the
   picker's Fashion-MNIST test images), ``models.json`` (the metadata) and
   ``SHA256SUMS``. None of these files is committed. The export takes some
   seconds, so it is skipped when the folder already holds an export of the
   same inputs (the zoo checkpoints' sha256, the export and model code, the
   torch and onnx versions: the *fingerprint* in ``models.json``) whose files
   all match their ``SHA256SUMS``. A fresh clone, as on CI, always exports.
2. Jupyter Book 1 adds every ``.js`` and ``.css`` file under ``_static/`` to
   every page. ``_static/live/live.js`` and ``live.css`` must not burden the
   other pages: they are dropped from ``html_js_files``/``html_css_files`` and
   added back only to the pages whose HTML holds the live figure
   (``id="cnncourse-live"``). The runtime itself is imported by ``live.js``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

LIVE_PREFIX = "live/"
MARKER = 'id="cnncourse-live"'
SUMS = "SHA256SUMS"


def _drop_live_files(app, config) -> None:
    for name in ("html_js_files", "html_css_files"):
        entries = getattr(config, name)
        kept = [e for e in entries if not (e[0] if isinstance(e, tuple) else e).startswith(LIVE_PREFIX)]
        setattr(config, name, kept)


def _add_to_live_page(app, pagename, templatename, context, doctree) -> None:
    if MARKER in context.get("body", ""):
        # async: it starts fetching the runtime while the page is parsed, and waits for the DOM itself
        app.add_js_file(f"{LIVE_PREFIX}live.js", loading_method="async")
        app.add_css_file(f"{LIVE_PREFIX}live.css")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fingerprint() -> str:
    """What the export depends on: code, checkpoints and versions (without importing torch twice)."""
    from cnncourse import export, zoo

    package = Path(export.__file__).parent
    parts = [f"{dist}={importlib.metadata.version(dist)}" for dist in ("torch", "onnx", "onnxscript")]
    for path in [package / "export.py", *sorted((package / "models").glob("*.py"))]:
        parts.append(f"{path.relative_to(package)}:{_sha256(path)}")
    folder = zoo.zoo_dir()
    for name in export.LIVE_MODELS:
        for file in (f"{name}.pt", f"{name}.json"):
            path = folder / file
            parts.append(f"{file}:{_sha256(path) if path.is_file() else 'missing'}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _up_to_date(folder: Path, fingerprint: str) -> bool:
    try:
        meta = json.loads((folder / "models.json").read_text())
        sums = [line.split(maxsplit=1) for line in (folder / SUMS).read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return False
    return meta.get("fingerprint") == fingerprint and bool(sums) and all(
        (folder / file.strip()).is_file() and _sha256(folder / file.strip()) == digest for digest, file in sums)


def _export(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    try:
        from cnncourse import export
    except ImportError as error:
        raise ExtensionError(f"live_models: cannot import cnncourse.export ({error}); "
                             "install the book's tools: pip install -e '.[book]'") from error
    folder = Path(app.outdir, "_static", "live")
    fingerprint = _fingerprint()
    if _up_to_date(folder, fingerprint):
        logger.info("live_models: %s is up to date", folder)
        return
    scratch = folder.with_name(".live-export")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        meta = export.export_live(scratch, extra={"fingerprint": fingerprint})
    except Exception as error:  # a missing zoo entry, onnx or Fashion-MNIST: fail the build, loudly
        raise ExtensionError(f"live_models: exporting the live page's networks failed: {error}") from error
    files = [line.split(maxsplit=1)[1].strip() for line in (scratch / SUMS).read_text().splitlines()]
    folder.mkdir(parents=True, exist_ok=True)
    for file in [*files, SUMS]:
        (scratch / file).replace(folder / file)
    shutil.rmtree(scratch, ignore_errors=True)
    logger.info("live_models: exported %s into %s", ", ".join(m["name"] for m in meta["models"]), folder)


def setup(app):
    # After Sphinx's own config-inited handler (priority 800) has normalised the lists.
    app.connect("config-inited", _drop_live_files, priority=900)
    app.connect("html-page-context", _add_to_live_page)
    app.connect("build-finished", _export)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
