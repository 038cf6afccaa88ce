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
