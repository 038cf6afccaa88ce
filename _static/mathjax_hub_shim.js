// The ipywidgets HTML manager typesets widget text with MathJax 2's
// `MathJax.Hub.Queue`; the book loads MathJax 3, which has no `Hub`, so every
// page with widgets threw "Cannot read properties of undefined (reading 'Queue')".
// This gives whatever object is stored in `window.MathJax` (Sphinx's config,
// then MathJax 3 itself) a `Hub.Queue` that asks MathJax 3 to typeset instead.
// Jupyter Book includes every script under _static/ on every page.
(function () {
  "use strict";
  var hub = {
    Queue: function () {
      var mathjax = window.MathJax;
      if (mathjax && typeof mathjax.typesetPromise === "function") {
        mathjax.typesetPromise().catch(function () {});
      }
    },
  };
  function withHub(value) {
    if (value && typeof value === "object" && !("Hub" in value)) {
      // not enumerable, so MathJax 3 does not read it as a configuration option
      Object.defineProperty(value, "Hub", { value: hub, configurable: true, writable: true });
    }
    return value;
  }
  var current = withHub(window.MathJax);
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () { return current; },
    set: function (value) { current = withHub(value); },
  });
})();
