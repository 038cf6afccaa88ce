#!/usr/bin/env bash
# Vendor the JavaScript that the website loads, so that it works without a CDN.
#
# Usage: tools/vendor_js.sh   (from anywhere; needs npm, tar and sha256sum)
#
# It fetches pinned releases from the npm registry with `npm pack`, checks each
# tarball's checksum and copies only what the website needs into _static/vendor/.
# Running it twice gives the same files (idempotent): every target folder is
# rebuilt from scratch each time, and this script also writes
# _static/vendor/README.md.
#
# 1. MathJax, into _static/vendor/mathjax/. What is copied, relative to the
#    package's es5/ folder, and why:
#      tex-chtml.js                  the combined component that _config.yml's
#                                    mathjax_path points at (TeX input, CommonHTML
#                                    output, menu, assistive MathML)
#      output/chtml/fonts/woff-v2/   the TeX fonts; tex-chtml.js resolves
#                                    fontURL = "[mathjax]/output/chtml/fonts/woff-v2",
#                                    i.e. relative to its own location
#      input/tex/extensions/         TeX packages that tex-chtml.js's `autoload`
#                                    fetches from "[mathjax]/input/tex/extensions"
#                                    the first time a page uses one of their macros
#                                    (\boldsymbol, \cancel, \color, \mathtools, ...)
#    Left out: the other bundles, the SVG output, and a11y/ and sre/ (the speech
#    and explorer tools that the context menu loads only on request).
#
# 2. The Jupyter widget manager for static pages (ipywidgets 8), into
#    _static/vendor/requirejs/ and _static/vendor/jupyter-widgets/. myst-nb
#    loads these three files, in this order, on the pages that hold widgets
#    (`nb_ipywidgets_js` in _config.yml):
#      requirejs/require.js          RequireJS, the AMD loader that embed-amd.js
#                                    defines its modules with
#      jupyter-widgets/require-config.js   written here (not downloaded): tells
#                                    RequireJS where the widget modules live, so
#                                    that they find their font files (see below)
#      jupyter-widgets/embed-amd.js  @jupyter-widgets/html-manager's dist/embed-amd.js:
#                                    the widget manager with @jupyter-widgets/base,
#                                    controls and output built in (so it never
#                                    asks a CDN for them), which renders every
#                                    widget on the page from the saved widget state
#    plus the Font Awesome 5 .woff2 fonts that the bundled CSS points at (icons
#    on buttons, the Play widget). The CSS builds their URLs from webpack's
#    public path, which embed-amd.js derives from RequireJS's idea of the module's
#    URL: for a module defined by a plain <script> that is "<page folder>/@jupyter-widgets/",
#    where nothing lives (the page then logs a 404 for every font). require-config.js
#    maps the module names to its own folder instead. Only .woff2 is
#    kept: every browser that runs the widget manager (ES2018) reads woff2, so the
#    .eot/.svg/.ttf/.woff fallbacks (3 MB) would never be fetched.
#    Left out: embed.js (the non-AMD build), libembed-amd.js (embed-amd.js minus
#    its last few lines) and the source maps.
#
# 3. ONNX Runtime Web, into _static/vendor/onnxruntime-web/, for the live page
#    (book/06b_live_cnn.md, whose script is _static/live/live.js). Only the
#    WebAssembly backend, in the one build that runs without cross-origin
#    isolation on every browser (single-threaded there; the package has no
#    other WebAssembly build smaller than it):
#      ort.wasm.bundle.min.mjs       the ES module of the WebAssembly backend with
#                                    its Emscripten glue (ort-wasm-simd-threaded.mjs)
#                                    bundled in, so it fetches no other script
#      ort-wasm-simd-threaded.wasm.gz   the WebAssembly binary (SIMD, threads
#                                    when the page is cross-origin isolated),
#                                    compressed here with `gzip -9 -n`: 14.8 MB
#                                    become 3.8 MB, whatever the web server does.
#                                    live.js fetches it, inflates it with the
#                                    browser's DecompressionStream and hands the
#                                    bytes to ONNX Runtime (env.wasm.wasmBinary),
#                                    so the runtime never fetches the .wasm itself
#    Left out: the WebGL, WebGPU, JSEP, JSPI and asyncify builds (18 to 30 MB
#    each), the non-bundled and non-minified scripts, lib/ and the source maps.
set -euo pipefail

MATHJAX_VERSION=3.2.2
# sha256 of https://registry.npmjs.org/mathjax/-/mathjax-3.2.2.tgz
# (npm's own integrity for it: sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==)
MATHJAX_SHA256=1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09

# The html-manager that matches ipywidgets 8.1 (jupyterlab_widgets 3.0.x ships
# jupyterlab-manager 5.0.16, built on the same @jupyter-widgets/base ^6.0.12 and
# controls ^5.0.13; ipywidgets' _version.py asks for html-manager ^1.0.1).
HTML_MANAGER_VERSION=1.0.15
# sha256 of https://registry.npmjs.org/@jupyter-widgets/html-manager/-/html-manager-1.0.15.tgz
# (npm's integrity: sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==)
HTML_MANAGER_SHA256=2b9d65cb7913e1c7d671757a10008b32c9c2448d4429513371e55c07d6107638

REQUIREJS_VERSION=2.3.8
# sha256 of https://registry.npmjs.org/requirejs/-/requirejs-2.3.8.tgz
# (npm's integrity: sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==)
REQUIREJS_SHA256=777158e89275e16bd51aec3ef714fbcb5dc45789e7078659933bc814916d7dec

ORT_WEB_VERSION=1.31.1
# sha256 of https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-1.31.1.tgz
# (npm's integrity: sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw==)
ORT_WEB_SHA256=bdccdb9fbb9ab537247c0c734e9b1d2b1b338b4f2a09faa58f0dc1cfa27c312c

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor_dir="$repo_root/_static/vendor"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# fetch SPEC TARBALL SHA256 DEST: `npm pack SPEC`, check TARBALL's sha256, unpack into DEST.
fetch() {
    local spec=$1 tarball=$2 sha256=$3 dest=$4
    echo "Fetching $spec from the npm registry" >&2
    (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
    echo "$sha256  $tmp/$tarball" | sha256sum --check --quiet -
    mkdir -p "$dest"
    tar -xzf "$tmp/$tarball" -C "$dest"
}

# Normalise permissions so that reruns and checkouts look the same to git.
normalise() {
    find "$1" -type d -exec chmod 755 {} +
    find "$1" -type f -exec chmod 644 {} +
}

# --- MathJax ---------------------------------------------------------------------
fetch "mathjax@$MATHJAX_VERSION" "mathjax-$MATHJAX_VERSION.tgz" "$MATHJAX_SHA256" "$tmp/mathjax"
src="$tmp/mathjax/package"
target="$vendor_dir/mathjax"
rm -rf "$target"
mkdir -p "$target/output/chtml/fonts" "$target/input/tex"
cp "$src/LICENSE" "$target/LICENSE"
cp "$src/es5/tex-chtml.js" "$target/tex-chtml.js"
cp -R "$src/es5/output/chtml/fonts/woff-v2" "$target/output/chtml/fonts/woff-v2"
cp -R "$src/es5/input/tex/extensions" "$target/input/tex/extensions"
normalise "$target"
echo "Vendored MathJax $MATHJAX_VERSION into ${target#"$repo_root"/} ($(du -sh "$target" | cut -f1))" >&2

# --- RequireJS -------------------------------------------------------------------
fetch "requirejs@$REQUIREJS_VERSION" "requirejs-$REQUIREJS_VERSION.tgz" "$REQUIREJS_SHA256" "$tmp/requirejs"
target="$vendor_dir/requirejs"
rm -rf "$target"
mkdir -p "$target"
# The npm package ships no LICENSE file; require.js's header carries the notice
# ("Copyright jQuery Foundation and other contributors. Released under MIT license").
cp "$tmp/requirejs/package/require.js" "$target/require.js"
cat > "$target/LICENSE" <<'LICENSE'
RequireJS is released under the MIT license
(https://github.com/requirejs/requirejs/blob/master/LICENSE).

Copyright jQuery Foundation and other contributors, https://jquery.org/

Permission is hereby granted, free of charge, to any person obtaining
a copy of this software and associated documentation files (the
"Software"), to deal in the Software without restriction, including
without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to
permit persons to whom the Software is furnished to do so, subject to
the following conditions:

The above copyright notice and this permission notice shall be
included in all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND,
EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF
MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE
LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION
OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION
WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
LICENSE
normalise "$target"
echo "Vendored RequireJS $REQUIREJS_VERSION into ${target#"$repo_root"/} ($(du -sh "$target" | cut -f1))" >&2

# --- @jupyter-widgets/html-manager -----------------------------------------------
fetch "@jupyter-widgets/html-manager@$HTML_MANAGER_VERSION" \
    "jupyter-widgets-html-manager-$HTML_MANAGER_VERSION.tgz" "$HTML_MANAGER_SHA256" "$tmp/html-manager"
dist="$tmp/html-manager/package/dist"
target="$vendor_dir/jupyter-widgets"
rm -rf "$target"
mkdir -p "$target"
cp "$dist/embed-amd.js" "$target/embed-amd.js"
# Without the ipywidgets 7 bundles and the inline CSS source maps (see the script).
python3 "$repo_root/tools/slim_widget_manager.py" "$target/embed-amd.js"
cp "$dist"/*.woff2 "$target/"
# Licences of the libraries webpack bundled (jQuery, jQuery UI, is-plain-object);
# npm ships the file for embed.js only, whose bundle has the same third parties.
cp "$dist/embed.js.LICENSE.txt" "$target/THIRD-PARTY-LICENSES.txt"
# The npm package ships no LICENSE file; this is the ipywidgets repository's
# (https://github.com/jupyter-widgets/ipywidgets/blob/main/LICENSE), which covers
# packages/html-manager, base, controls and output.
cat > "$target/LICENSE" <<'LICENSE'
Copyright (c) 2015 Project Jupyter Contributors
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

3. Neither the name of the copyright holder nor the names of its
   contributors may be used to endorse or promote products derived from
   this software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
LICENSE
cat > "$target/require-config.js" <<'JS'
// Written by tools/vendor_js.sh (not downloaded). Loaded after require.js and
// before embed-amd.js, on the pages that hold widgets.
//
// Each module that embed-amd.js defines takes its webpack public path, the URL
// its CSS uses for the Font Awesome fonts, from the folder of the URL that
// RequireJS gives the module. For a module defined by a plain <script> that is
// "<page folder>/@jupyter-widgets/...", where nothing is (and html-manager's
// window.__jupyter_widgets_assets_path__ override comes too late for the CSS).
// Mapping every module name to this script's own folder, where
// tools/vendor_js.sh puts the fonts, fixes that. RequireJS never fetches these
// URLs: embed-amd.js has already defined the modules.
(function () {
  var script = document.currentScript;
  if (!window.requirejs || !script || !script.src) {
    return;
  }
  var here = new URL(".", script.src).href;
  var names = [
    "@jupyter-widgets/base",
    "@jupyter-widgets/controls",
    "@jupyter-widgets/html-manager",
    "@jupyter-widgets/html-manager/dist/libembed-amd"
  ];
  var paths = {};
  names.forEach(function (name) {
    paths[name] = here + name.replace(/[@\/]/g, "_");
  });
  window.requirejs.config({ paths: paths });
})();
JS
normalise "$target"
echo "Vendored @jupyter-widgets/html-manager $HTML_MANAGER_VERSION into ${target#"$repo_root"/} ($(du -sh "$target" | cut -f1))" >&2

# --- ONNX Runtime Web ------------------------------------------------------------
fetch "onnxruntime-web@$ORT_WEB_VERSION" "onnxruntime-web-$ORT_WEB_VERSION.tgz" "$ORT_WEB_SHA256" "$tmp/ort"
dist="$tmp/ort/package/dist"
target="$vendor_dir/onnxruntime-web"
rm -rf "$target"
mkdir -p "$target"
cp "$dist/ort.wasm.bundle.min.mjs" "$target/ort.wasm.bundle.min.mjs"
gzip -9 -n -c "$dist/ort-wasm-simd-threaded.wasm" > "$target/ort-wasm-simd-threaded.wasm.gz"
ORT_WASM_BYTES=$(stat -c %s "$dist/ort-wasm-simd-threaded.wasm")
ORT_WASM_SHA256=$(sha256sum "$dist/ort-wasm-simd-threaded.wasm" | cut -d' ' -f1)
# The npm package ships no LICENSE file; its scripts' headers say "Copyright (c)
# Microsoft Corporation. All rights reserved. Licensed under the MIT License.",
# and this is the repository's LICENSE (https://github.com/microsoft/onnxruntime).
cat > "$target/LICENSE" <<'LICENSE'
MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
LICENSE
normalise "$target"
echo "Vendored onnxruntime-web $ORT_WEB_VERSION into ${target#"$repo_root"/} ($(du -sh "$target" | cut -f1))" >&2

# --- README ----------------------------------------------------------------------
size() { du -k "$1" | cut -f1; }
cat > "$vendor_dir/README.md" <<README
# Vendored JavaScript

The website must work offline, without any CDN, so the JavaScript it loads is
copied here and served from \`_static/\`. Do not edit these files by hand:
regenerate them with

    tools/vendor_js.sh

which needs \`npm\` (it uses \`npm pack\`), checks every tarball's sha256, and
overwrites \`_static/vendor/mathjax/\`, \`requirejs/\`, \`jupyter-widgets/\`,
\`onnxruntime-web/\` and this README.

## MathJax

- What: MathJax $MATHJAX_VERSION, the \`tex-chtml.js\` component (TeX input,
  CommonHTML output), its TeX fonts (\`output/chtml/fonts/woff-v2/\`) and the TeX
  extensions that it autoloads on first use (\`input/tex/extensions/\`). The other
  bundles, the SVG output and the accessibility/speech tools (\`a11y/\`, \`sre/\`)
  are left out.
- Version: $MATHJAX_VERSION (pinned in \`tools/vendor_js.sh\`).
- From: the npm package \`mathjax@$MATHJAX_VERSION\`, files taken from its \`es5/\`
  folder (https://registry.npmjs.org/mathjax/-/mathjax-$MATHJAX_VERSION.tgz,
  sha256 \`$MATHJAX_SHA256\`).
- License: Apache License 2.0, copyright the MathJax Consortium; the full text
  is in \`mathjax/LICENSE\`.
- Used by: \`_config.yml\` sets \`mathjax_path: vendor/mathjax/tex-chtml.js\`
  (relative to \`_static/\`), so Sphinx loads MathJax on the pages that have math;
  MathJax then fetches its fonts and extensions from this folder by itself.

## Jupyter widgets: html-manager and RequireJS

The book's explorers are ipywidgets. On the website there is no kernel: the
widget state that the build saved (every precomputed picture included) is
embedded in the page, and the widget manager below renders it and runs the
\`jslink\`s between the controls in the browser.

- What: \`jupyter-widgets/embed-amd.js\`, the RequireJS build of
  \`@jupyter-widgets/html-manager\` $HTML_MANAGER_VERSION ($(size "$vendor_dir/jupyter-widgets/embed-amd.js") KiB), slimmed by
  \`tools/slim_widget_manager.py\`: it keeps \`@jupyter-widgets/base\`, \`controls\`
  and \`output\` built in, so it loads no widget module from a CDN, and drops
  their ipywidgets 7 versions (the book saves ipywidgets 8 states) and the inline
  source maps of their stylesheets (3.6 MB as published). Beside it, the
  three Font Awesome 5.15.4 \`.woff2\` fonts that its CSS uses for icons, and
  \`require-config.js\`, a few lines written by \`tools/vendor_js.sh\` that map
  the widget modules' names to this folder in RequireJS, so that their CSS
  finds those fonts here (see the script for why).
  \`requirejs/require.js\` is RequireJS $REQUIREJS_VERSION ($(size "$vendor_dir/requirejs/require.js") KiB, not minified),
  the AMD loader \`embed-amd.js\` needs.
- Versions: html-manager $HTML_MANAGER_VERSION matches ipywidgets 8.1 (same
  \`@jupyter-widgets/base\` ^6.0.12 and \`controls\` ^5.0.13 as the JupyterLab
  extension of ipywidgets 8.1.9); RequireJS $REQUIREJS_VERSION. Both pinned in
  \`tools/vendor_js.sh\`.
- From: https://registry.npmjs.org/@jupyter-widgets/html-manager/-/html-manager-$HTML_MANAGER_VERSION.tgz
  (sha256 \`$HTML_MANAGER_SHA256\`), files from its \`dist/\`; and
  https://registry.npmjs.org/requirejs/-/requirejs-$REQUIREJS_VERSION.tgz
  (sha256 \`$REQUIREJS_SHA256\`).
- Licenses: html-manager is BSD-3-Clause, copyright Project Jupyter Contributors
  (\`jupyter-widgets/LICENSE\`); the libraries bundled into it (jQuery, jQuery UI,
  is-plain-object, MIT) are listed in \`jupyter-widgets/THIRD-PARTY-LICENSES.txt\`;
  the Font Awesome Free fonts are under the SIL Open Font License 1.1 (notice in
  the CSS inside \`embed-amd.js\`). RequireJS is MIT, copyright the jQuery
  Foundation and other contributors (\`requirejs/LICENSE\`).
- Used by: \`_config.yml\` sets myst-nb's \`nb_ipywidgets_js\` to
  \`vendor/requirejs/require.js\`, \`vendor/jupyter-widgets/require-config.js\` and
  \`vendor/jupyter-widgets/embed-amd.js\` (in that order, relative to \`_static/\`),
  instead of myst-nb's default CDN URLs. myst-nb adds them only to pages whose
  notebook saved a widget state.

## ONNX Runtime Web

The live page (\`book/06b_live_cnn.md\`) runs the book's trained networks in the
reader's browser. Its script, \`_static/live/live.js\`, loads this runtime; the
networks themselves (ONNX files) are exported from the zoo's checkpoints when the
book is built (\`_ext/live_models.py\`, \`cnncourse.export\`).

- What: \`onnxruntime-web/ort.wasm.bundle.min.mjs\` ($(size "$vendor_dir/onnxruntime-web/ort.wasm.bundle.min.mjs") KiB), the ES
  module of the WebAssembly backend with its Emscripten glue bundled in, and
  \`ort-wasm-simd-threaded.wasm.gz\` ($(size "$vendor_dir/onnxruntime-web/ort-wasm-simd-threaded.wasm.gz") KiB), the package's
  \`dist/ort-wasm-simd-threaded.wasm\` ($ORT_WASM_BYTES bytes, sha256
  \`$ORT_WASM_SHA256\`)
  compressed with \`gzip -9 -n\`. That build is the smallest WebAssembly build in
  the package and the one that runs without cross-origin isolation (GitHub
  Pages cannot send the headers for it): it then runs on one thread. The
  compressed file keeps the page light on any static host; \`live.js\` inflates
  it in the browser (\`DecompressionStream\`, which checks gzip's CRC-32 and
  length) and passes the bytes to ONNX Runtime as \`env.wasm.wasmBinary\`, so the
  runtime fetches no \`.wasm\` by itself. Left out: the WebGL, WebGPU, JSEP, JSPI
  and asyncify builds, \`lib/\` and the source maps.
- Version: $ORT_WEB_VERSION (pinned in \`tools/vendor_js.sh\`).
- From: https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-$ORT_WEB_VERSION.tgz
  (sha256 \`$ORT_WEB_SHA256\`), files from its \`dist/\`.
- License: MIT, copyright Microsoft Corporation (\`onnxruntime-web/LICENSE\`; the
  npm package ships none, so the script writes the repository's). The
  WebAssembly binary also contains third-party code (ONNX, Protocol Buffers,
  Eigen, Abseil and others) whose notices are in ONNX Runtime's
  https://github.com/microsoft/onnxruntime/blob/v$ORT_WEB_VERSION/ThirdPartyNotices.txt.
- Used by: \`_static/live/live.js\`, on the live page only: \`_ext/live_models.py\`
  adds \`live/live.js\` and \`live/live.css\` to the pages that hold the live
  figure and to no other, and the runtime is imported by \`live.js\` when the page
  is served over http(s) (a page opened from \`file://\` says how to serve it).

## Note for Jupyter Book 1

Jupyter Book 1 adds every \`.js\` and \`.css\` file under \`_static/\` to every page
as a \`<script>\`/\`<link>\`. Files under \`_static/vendor/\` must not be: a local
Sphinx extension, registered under \`sphinx.local_extensions\` in \`_config.yml\`,
removes them from \`html_js_files\`/\`html_css_files\` (and \`_ext/live_models.py\`
does the same for \`_static/live/\`, whose script and stylesheet only the live page
loads). \`tests/test_site.py\` opens the
pages in headless Chromium and fails on any script error or failed request;
\`tests/test_explorers_site.py\` also moves the explorers' controls there.

In the built site, \`_build/html/_static/vendor/\` also holds \`fontawesome/\`: that
one comes from pydata-sphinx-theme, not from here.
README
