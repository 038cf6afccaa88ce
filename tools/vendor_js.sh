#!/usr/bin/env bash
# Vendor the JavaScript that the website loads, so that it works without a CDN.
#
# Usage: tools/vendor_js.sh   (from anywhere; needs npm, tar and sha256sum)
#
# It fetches a pinned MathJax 3 release from the npm registry with `npm pack`,
# checks the tarball's checksum and copies only what the website needs into
# _static/vendor/mathjax/. Running it twice gives the same files (idempotent):
# the target folder is rebuilt from scratch each time.
#
# What is copied, relative to the package's es5/ folder, and why:
#   tex-chtml.js                  the combined component that _config.yml's
#                                 mathjax_path points at (TeX input, CommonHTML
#                                 output, menu, assistive MathML)
#   output/chtml/fonts/woff-v2/   the TeX fonts; tex-chtml.js resolves
#                                 fontURL = "[mathjax]/output/chtml/fonts/woff-v2",
#                                 i.e. relative to its own location
#   input/tex/extensions/         TeX packages that tex-chtml.js's `autoload`
#                                 fetches from "[mathjax]/input/tex/extensions"
#                                 the first time a page uses one of their macros
#                                 (\boldsymbol, \cancel, \color, \mathtools, ...)
# Left out: the other bundles, the SVG output, and a11y/ and sre/ (the speech
# and explorer tools that the context menu loads only on request).
set -euo pipefail

MATHJAX_VERSION=3.2.2
# sha256 of https://registry.npmjs.org/mathjax/-/mathjax-3.2.2.tgz
# (npm's own integrity for it: sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==)
MATHJAX_SHA256=1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor_dir="$repo_root/_static/vendor"
target="$vendor_dir/mathjax"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "Fetching mathjax@$MATHJAX_VERSION from the npm registry" >&2
(cd "$tmp" && npm pack --silent "mathjax@$MATHJAX_VERSION" >/dev/null)
tarball="$tmp/mathjax-$MATHJAX_VERSION.tgz"
echo "$MATHJAX_SHA256  $tarball" | sha256sum --check --quiet -

tar -xzf "$tarball" -C "$tmp"
src="$tmp/package"

rm -rf "$target"
mkdir -p "$target/output/chtml/fonts" "$target/input/tex"
cp "$src/LICENSE" "$target/LICENSE"
cp "$src/es5/tex-chtml.js" "$target/tex-chtml.js"
cp -R "$src/es5/output/chtml/fonts/woff-v2" "$target/output/chtml/fonts/woff-v2"
cp -R "$src/es5/input/tex/extensions" "$target/input/tex/extensions"
# Normalise permissions so that reruns and checkouts look the same to git.
find "$target" -type d -exec chmod 755 {} +
find "$target" -type f -exec chmod 644 {} +

cat > "$vendor_dir/README.md" <<README
# Vendored JavaScript

The website must work offline, without any CDN, so the JavaScript it loads is
copied here and served from \`_static/\`. Do not edit these files by hand:
regenerate them with

    tools/vendor_js.sh

which needs \`npm\` (it uses \`npm pack\`) and overwrites \`_static/vendor/mathjax/\`
and this README.

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

## Note for Jupyter Book 1

Jupyter Book 1 adds every \`.js\` and \`.css\` file under \`_static/\` to every page
as a \`<script>\`/\`<link>\`. Files under \`_static/vendor/\` must not be: a local
Sphinx extension, registered under \`sphinx.local_extensions\` in \`_config.yml\`,
removes them from \`html_js_files\`/\`html_css_files\`. \`tests/test_site.py\` opens the
pages in headless Chromium and fails on any script error or failed request.

In the built site, \`_build/html/_static/vendor/\` also holds \`fontawesome/\`: that
one comes from pydata-sphinx-theme, not from here.
README

echo "Vendored MathJax $MATHJAX_VERSION into ${target#"$repo_root"/} ($(du -sh "$target" | cut -f1))" >&2
