// The book's own script (Jupyter Book adds every script in _static/ to every page).
//
// Explorer controls that need Python (the kernel explorer's nine numbers, whose
// map a running notebook recomputes) carry the class cnncourse-live-only. On the
// website no kernel runs, so they are made read-only here: a reader cannot type
// numbers that change nothing. In Jupyter and Colab this script is absent and the
// boxes stay editable. tests/test_site_layout.py checks it.
(function () {
  "use strict";
  var NOTE = "Editable when the notebook runs in Jupyter or Colab; on the website the " +
    "pictures are precomputed.";

  function freeze(root) {
    root.querySelectorAll(".cnncourse-live-only input, .cnncourse-live-only textarea").forEach(function (input) {
      if (!input.readOnly) {
        input.readOnly = true;
        input.tabIndex = -1;
        input.title = NOTE;
      }
    });
  }

  function start() {
    freeze(document);
    // The widget manager renders the explorers after the page has loaded.
    new MutationObserver(function () { freeze(document); })
      .observe(document.body, { childList: true, subtree: true });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
