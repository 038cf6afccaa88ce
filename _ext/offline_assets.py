"""Keep the website's <script>/<link> tags correct for Jupyter Book 1 on Sphinx 7.

Two upstream behaviours break an offline site with vendored JavaScript:

1. Jupyter Book 1 adds every .js and .css file under html_static_path to every
   page (jupyter_book/config.py). The vendored MathJax under _static/vendor/ must
   not be: Sphinx loads tex-chtml.js through `mathjax_path`, and MathJax loads its
   fonts and TeX extensions itself, on demand.
2. Sphinx 7.4 writes an inline script twice when an extension adds it after the
   builder started (sphinx-thebe's `const THEBE_JS_URL`, a SyntaxError the second
   time). Fixed upstream in Sphinx 8.2 (sphinx-doc/sphinx#13402), which
   jupyter-book 1 (sphinx~=7.0) cannot use.
"""

from __future__ import annotations

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


def setup(app):
    # After Sphinx's own config-inited handler (priority 800) has normalised the lists.
    app.connect("config-inited", _drop_vendored_files, priority=900)
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
