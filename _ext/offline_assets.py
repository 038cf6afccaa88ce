"""Keep the website's <script>/<link> tags correct for Jupyter Book 1 on Sphinx 7.

Six upstream behaviours get in the way of a light, offline site with vendored JavaScript:

1. Jupyter Book 1 adds every .js and .css file under html_static_path to every
   page (jupyter_book/config.py). The vendored MathJax under _static/vendor/ must
   not be: Sphinx loads tex-chtml.js through `mathjax_path`, and MathJax loads its
   fonts and TeX extensions itself, on demand.
2. The themes ship source maps (``*.map``, 3.4 MB) beside their minified
   scripts and stylesheets. Browsers fetch them only for their developer
   tools, so the build deletes them instead of publishing them.
3. pydata-sphinx-theme loads Font Awesome twice: as web fonts through its
   stylesheet, which draws every icon of the theme, and as a 1.5 MB script,
   ``scripts/fontawesome.js``, that redraws the same icons as SVG and is there
   "so that users can add custom icons". The book adds none, so the build
   removes the script's tag from every page and the script itself: every page
   is 1.5 MB lighter and the icons look the same.
4. Matplotlib writes every figure as an RGBA PNG, even when no pixel is
   transparent. The build rewrites such images as RGB PNGs, pixel for pixel the
   same and about an eighth smaller.
5. Sphinx 7.4 writes an inline script twice when an extension adds it after the
   builder started (sphinx-thebe's `const THEBE_JS_URL`, a SyntaxError the second
   time). Fixed upstream in Sphinx 8.2 (sphinx-doc/sphinx#13402), which
   jupyter-book 1 (sphinx~=7.0) cannot use.
6. pydata-sphinx-theme loads Sphinx's search index (``searchindex.js``, 250 kB
   and growing with every chapter) on every page, for its search-as-you-type
   field. The book leaves that option off (the theme's default): its search
   field submits to ``search.html``, which loads the index itself. The build
   removes the tag from every other page, so no page but the search page pays
   for the index.
"""

from __future__ import annotations

import re
from pathlib import Path

VENDOR_PREFIX = "vendor/"


def _drop_vendored_files(app, config) -> None:
    for name in ("html_js_files", "html_css_files"):
        entries = getattr(config, name)
        kept = [e for e in entries
                if not (e[0] if isinstance(e, tuple) else e).startswith(VENDOR_PREFIX)]
        setattr(config, name, kept)


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        key = (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


_FONTAWESOME_JS = re.compile(r'<script defer src="[^"]*_static/scripts/fontawesome\.js[^"]*"></script>\n?')
_SEARCH_INDEX = re.compile(r'[ \t]*<script src="(?:\.\./)*searchindex\.js"></script>\n?')


def _drop_opaque_alpha(path: Path) -> None:
    """Rewrite an RGBA PNG whose pixels are all opaque as an RGB PNG (lossless)."""
    from PIL import Image

    with Image.open(path) as image:
        if image.mode != "RGBA" or image.getchannel("A").getextrema() != (255, 255):
            return
        rgb = image.convert("RGB")
    rgb.save(path, format="PNG", optimize=True)


def _drop_unused_assets(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir, "_static")
    for path in static.rglob("*.map"):
        path.unlink()
    for name in ("fontawesome.js", "fontawesome.js.LICENSE.txt"):
        (static / "scripts" / name).unlink(missing_ok=True)
    for image in Path(app.outdir, "_images").glob("*.png"):
        _drop_opaque_alpha(image)
    index_on_every_page = app.config.html_theme_options.get("search_as_you_type", False)
    for page in Path(app.outdir).rglob("*.html"):
        text = page.read_text(encoding="utf8")
        slim = _FONTAWESOME_JS.sub("", text)
        if page.name != "search.html" and not index_on_every_page:
            slim = _SEARCH_INDEX.sub("", slim)
        if slim != text:
            page.write_text(slim, encoding="utf8")


def setup(app):
    # After Sphinx's own config-inited handler (priority 800) has normalised the lists.
    app.connect("config-inited", _drop_vendored_files, priority=900)
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    app.connect("build-finished", _drop_unused_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
