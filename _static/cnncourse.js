// The book's own script (Jupyter Book adds every script in _static/ to every page).
//
// Explorer controls that need Python (the kernel explorer's nine numbers, whose
// map a running notebook recomputes) carry the class cnncourse-live-only. On the
// website no kernel runs, so they are made read-only here: a reader cannot type
// numbers that change nothing. In Jupyter and Colab this script is absent and the
// boxes stay editable. tests/test_site_layout.py checks it.
//
// The explorers' pictures are ipywidgets Images, which have no alt attribute (and
// a tooltip on an Image breaks its view in ipywidgets 8, which looks for a
// description an Image does not have). So each picture gets its alt text here,
// from the words the explorer shows with it: the state's own caption, if it has
// one, and the explorer's help text, which says what the pictures show.
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

  function describe(root) {
    root.querySelectorAll("img.widget-image:not([alt])").forEach(function (image) {
      var caption = image.parentElement && image.parentElement.querySelector(":scope > .widget-html");
      var explorer = image.closest("[class*='cnncourse-'][class*='-explorer']");
      var help = explorer && explorer.querySelector(":scope > .widget-html:last-child");
      var words = [caption, help].filter(Boolean).map(function (element) {
        return element.textContent.replace(/\s+/g, " ").trim();
      }).filter(Boolean);
      image.alt = words.length ? words.join(". ") : "A precomputed picture of the explorer's current setting.";
    });
  }

  function start() {
    freeze(document);
    describe(document);
    // The widget manager renders the explorers after the page has loaded.
    new MutationObserver(function () { freeze(document); describe(document); })
      .observe(document.body, { childList: true, subtree: true });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
