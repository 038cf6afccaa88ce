/*
 * The live CNN of book/06b_live_cnn.md: trained zoo networks, run in the
 * reader's browser by ONNX Runtime Web (WebAssembly), on a 28 x 28 drawing or
 * a Fashion-MNIST test image, with the top-5 prediction and the feature maps
 * of every layer updated as the reader draws.
 *
 * What it loads, all from this site (no CDN, nothing sent anywhere):
 *   _static/live/models.json, samples.json, *.onnx   written when the book is
 *       built (_ext/live_models.py, cnncourse.export): the networks, exported
 *       from the zoo's checkpoints with their feature maps as extra outputs,
 *       and a few test images for the picker;
 *   _static/vendor/onnxruntime-web/   the runtime (tools/vendor_js.sh): an ES
 *       module and its WebAssembly binary, gzipped; this script inflates the
 *       binary and hands it to the runtime (env.wasm.wasmBinary).
 *
 * Browsers refuse to fetch files or compile WebAssembly for a page opened
 * from file://, so there the figure says how to serve the folder instead.
 *
 * For tests (tests/test_live_site.py) and the curious, window.cnncourseLive
 * offers:
 *   ready                      a promise of {ok, reason}: settled once the first
 *                              prediction is on screen (or loading failed)
 *   predict(pixels, model)     runs 784 pixels in [0, 1] (row by row, 0 is
 *                              black) through a network, by name ("lenet5"),
 *                              with this page's own code; resolves to
 *                              {model, logits, probabilities}
 *   models                     the networks' metadata (models.json)
 *   lastResult                 what the figure shows now: {model, logits}
 *   timing.firstPrediction     ms from navigation start to the first prediction
 *
 * No framework: plain DOM, one <canvas> per picture.
 */
(function () {
  "use strict";

  const SIZE = 28; // Fashion-MNIST images are 28 x 28
  const script = document.currentScript;
  const LIVE = new URL(".", script.src); // .../_static/live/
  const VENDOR = new URL("../vendor/onnxruntime-web/", LIVE);
  const SITE = new URL("../../", LIVE); // the site's root folder
  const RUNTIME = "ort.wasm.bundle.min.mjs";
  const WASM = "ort-wasm-simd-threaded.wasm.gz";

  let settle; // resolves api.ready
  let shown; // resolves firstShown
  const firstShown = new Promise((resolve) => { shown = resolve; });
  const api = {
    ready: new Promise((resolve) => { settle = resolve; }),
    predict: predict,
    models: [],
    lastResult: null,
    timing: {},
  };
  window.cnncourseLive = api;

  // --- State --------------------------------------------------------------------

  const state = {
    runtime: null, // a promise of the runtime module
    ort: null, // the runtime module, once loaded
    meta: null, // models.json
    samples: null, // {labels, indices, pixels: Uint8Array}
    sessions: new Map(), // model name -> promise of an InferenceSession
    model: null, // the chosen model's metadata
    ink: new Float32Array(SIZE * SIZE), // the input, in [0, 1]
    source: "", // what the input is: a test image or a drawing
    tool: "pen",
    brush: 1.5, // radius in pixels of the 28 x 28 grid
    dirty: false, // the input changed since the last prediction
    running: false,
    lastVerdict: "",
    perMap: false, // one colour scale per map instead of one per layer
  };
  const ui = {}; // the elements built below

  // --- Start ----------------------------------------------------------------------

  /**
   * The script loads asynchronously: it starts fetching the runtime and the
   * networks at once and builds the figure when the page's HTML is parsed.
   */
  function start() {
    if (location.protocol === "file:") {
      domReady().then(() => attach() && showServeMessage());
      settle({ ok: false, reason: "file" });
      return;
    }
    load().catch(async (error) => {
      await domReady();
      if (attach()) {
        showError(error);
      }
      settle({ ok: false, reason: String(error) });
    });
  }

  function domReady() {
    return new Promise((resolve) => {
      if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", resolve, { once: true });
      } else {
        resolve();
      }
    });
  }

  /** Find the figure's container in the page; false if this page has none. */
  function attach() {
    ui.root = document.getElementById("cnncourse-live");
    if (!ui.root) {
      return false;
    }
    ui.status = ui.root.querySelector(".live-status") || ui.root.appendChild(element("p", "live-status"));
    ui.status.setAttribute("role", "status");
    return true;
  }

  /** Fetch everything in parallel, build the figure, run the first prediction. */
  async function load() {
    api.timing.start = performance.now();
    if (typeof WebAssembly !== "object") {
      throw new Error("this browser does not run WebAssembly");
    }
    const metaPromise = fetchJSON("models.json");
    const samplesPromise = fetchJSON("samples.json");
    state.runtime = loadRuntime();
    state.runtime.catch(() => undefined); // its failure is reported where it is awaited
    // The first network's session starts as soon as the runtime and the network are here.
    metaPromise.then((meta) => sessionFor(meta.models[0].name, meta)).catch(() => undefined);
    await domReady();
    if (!attach()) {
      return;
    }
    setStatus("Loading ONNX Runtime and the networks\u2026");
    const [meta, samples, ort] = await Promise.all([metaPromise, samplesPromise, state.runtime]);
    state.meta = meta;
    state.ort = ort;
    api.models = meta.models;
    state.samples = {
      labels: samples.labels,
      indices: samples.indices,
      pixels: Uint8Array.from(atob(samples.pixels), (c) => c.charCodeAt(0)),
    };
    build();
    state.model = meta.models[0];
    pick(0);
    await choose(meta.models[0].name);
    await firstShown;
    setStatus(`Running in your browser: ONNX Runtime Web ${ort.env.versions.web || ""} ` +
              "(WebAssembly, one thread). Draw, or pick a test image.");
    settle({ ok: true });
  }

  /** The runtime's ES module, with its WebAssembly binary inflated here. */
  async function loadRuntime() {
    if (typeof DecompressionStream !== "function") {
      throw new Error("this browser cannot inflate gzip data (DecompressionStream): " +
                      "a browser from 2023 or later can");
    }
    const [ort, binary] = await Promise.all([import(new URL(RUNTIME, VENDOR).href), fetchWasm()]);
    api.timing.runtime = performance.now();
    ort.env.wasm.wasmBinary = binary; // so the runtime fetches no .wasm itself
    ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which static hosts lack
    ort.env.wasm.proxy = false;
    ort.env.logLevel = "error";
    return ort;
  }

  /** The WebAssembly binary, inflated while it downloads. */
  async function fetchWasm() {
    const url = new URL(WASM, VENDOR);
    const response = await fetch(url);
    if (!response.ok) {
      throw new Error(`${url} answered HTTP ${response.status}`);
    }
    // Peek at the first bytes: a server that sends .gz files with "Content-Encoding: gzip"
    // has had the browser inflate it already.
    const [peek, body] = response.body.tee();
    const reader = peek.getReader();
    const { value } = await reader.read();
    reader.cancel();
    const gzipped = value && value[0] === 0x1f && value[1] === 0x8b;
    const stream = gzipped ? body.pipeThrough(new DecompressionStream("gzip")) : body;
    const binary = new Uint8Array(await new Response(stream).arrayBuffer());
    api.timing.wasmInflated = performance.now();
    return binary;
  }

  async function fetchBytes(url) {
    const response = await fetch(url);
    if (!response.ok) {
      throw new Error(`${url} answered HTTP ${response.status}`);
    }
    return new Uint8Array(await response.arrayBuffer());
  }

  async function fetchJSON(name) {
    const response = await fetch(new URL(name, LIVE));
    if (!response.ok) {
      throw new Error(`${name} answered HTTP ${response.status}: was the book built with _ext/live_models.py?`);
    }
    return response.json();
  }

  // --- Running a network ------------------------------------------------------------

  function modelMeta(name, meta) {
    const models = (meta || state.meta).models;
    const model = models.find((m) => m.name === name);
    if (!model) {
      throw new Error(`no network ${name}; the page has ${models.map((m) => m.name).join(", ")}`);
    }
    return model;
  }

  /** One InferenceSession per network, created on first use. */
  function sessionFor(name, meta) {
    if (!state.sessions.has(name)) {
      const bytes = fetchBytes(new URL(modelMeta(name, meta).file, LIVE));
      const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
      state.sessions.set(name, Promise.all([state.runtime, bytes]).then(
        ([ort, b]) => ort.InferenceSession.create(b, options),
      ).then((session) => {
        api.timing[`session:${name}`] = performance.now();
        return session;
      }));
    }
    return state.sessions.get(name);
  }

  // A session runs one input at a time: every run waits for the one before.
  let queue = Promise.resolve();
  function serially(task) {
    const result = queue.then(task);
    queue = result.catch(() => undefined);
    return result;
  }

  /** Run `pixels` (784 values in [0, 1]) through network `name`: every output, by name. */
  function run(name, pixels) {
    const model = modelMeta(name);
    const { mean, std } = model.input;
    const input = new Float32Array(SIZE * SIZE);
    for (let i = 0; i < input.length; i++) {
      input[i] = (pixels[i] - mean) / std;
    }
    return serially(async () => {
      const session = await sessionFor(name);
      const tensor = new state.ort.Tensor("float32", input, model.input.shape);
      const outputs = await session.run({ [model.input.name]: tensor });
      return { model, outputs };
    });
  }

  function softmax(logits) {
    const top = Math.max(...logits);
    const e = logits.map((z) => Math.exp(z - top));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  }

  /** The test hook: the page's own path from pixels to logits. */
  async function predict(pixels, name) {
    const status = await api.ready;
    if (!status.ok) {
      throw new Error(`the live figure did not load (${status.reason})`);
    }
    if (!pixels || pixels.length !== SIZE * SIZE) {
      throw new Error(`predict needs ${SIZE * SIZE} pixels, got ${pixels && pixels.length}`);
    }
    const { model, outputs } = await run(name || state.model.name, pixels);
    const logits = Array.from(outputs[model.outputs[0].name].data);
    return { model: model.name, logits, probabilities: softmax(logits) };
  }

  /** Predict the figure's input and redraw; drawing faster than that skips to the newest input. */
  function update() {
    state.dirty = true;
    if (!state.running) {
      settleInput().catch(showError);
    }
  }

  async function settleInput() {
    state.running = true;
    try {
      while (state.dirty) {
        state.dirty = false;
        const name = state.model.name;
        const { model, outputs } = await run(name, state.ink.slice());
        if (model.name === state.model.name) {
          show(model, outputs);
        }
      }
    } finally {
      state.running = false;
    }
  }

  // --- Building the figure ---------------------------------------------------------------

  function element(tag, className, text) {
    const el = document.createElement(tag);
    if (className) {
      el.className = className;
    }
    if (text !== undefined) {
      el.textContent = text;
    }
    return el;
  }

  /** The figure: network choice, input and prediction side by side, picker, feature maps. */
  function build() {
    const top = element("div", "live-top");
    top.append(buildInput(), buildPrediction());
    ui.layers = element("div", "live-layers"); // filled in by choose()
    ui.root.append(buildModelChoice(), top, buildPicker(), ...buildLayerHeader(), ui.layers);
  }

  /** A fieldset of radio buttons; `choices` are [label (text or nodes), checked, onChange]. */
  function radios(legend, name, choices) {
    const fieldset = element("fieldset", `live-${name}`);
    fieldset.appendChild(element("legend", "", legend));
    const inputs = choices.map(([text, checked, onChange]) => {
      const label = element("label", "live-choice");
      const input = element("input");
      input.type = "radio";
      input.name = `cnncourse-live-${name}`;
      input.checked = checked;
      input.addEventListener("change", onChange);
      label.append(input, " ", ...[].concat(text));
      fieldset.appendChild(label);
      return input;
    });
    return [fieldset, inputs];
  }

  function buildModelChoice() {
    const [fieldset, inputs] = radios("Network", "models", state.meta.models.map((m) => [
      [`${m.title} `, element("span", "live-note", `(${(100 * m.test_accuracy).toFixed(1)}% on the test set)`)],
      false,
      () => choose(m.name).catch(showError),
    ]));
    inputs.forEach((input, k) => { input.value = state.meta.models[k].name; });
    ui.modelInputs = inputs;
    return fieldset;
  }

  /** The input: a 28 x 28 canvas, drawn on with a mouse, a finger or a pen, and its tools. */
  function buildInput() {
    ui.canvas = element("canvas", "live-canvas");
    ui.canvas.width = SIZE;
    ui.canvas.height = SIZE;
    ui.canvas.setAttribute("role", "img");
    ui.canvas.setAttribute("aria-label",
      "Drawing area, 28 by 28 pixels: draw on it with a mouse, a finger or a pen. " +
      "It shows the network's input: white on black, like Fashion-MNIST.");
    listenForStrokes(ui.canvas);
    ui.source = element("p", "live-source");

    ui.pen = toolButton("Pen", "pen");
    ui.eraser = toolButton("Eraser", "eraser");
    const clear = element("button", "live-button", "Clear");
    clear.type = "button";
    clear.addEventListener("click", () => {
      state.ink.fill(0);
      markPicked(-1);
      state.source = "A blank canvas: draw something.";
      drawInput();
      update();
    });
    const brushLabel = element("label", "live-brush", "Brush ");
    const brush = element("input");
    brush.type = "range";
    brush.min = "0.8";
    brush.max = "3";
    brush.step = "0.1";
    brush.value = String(state.brush);
    brush.setAttribute("aria-label", "Brush radius in pixels");
    brush.addEventListener("input", () => { state.brush = Number(brush.value); });
    brushLabel.appendChild(brush);
    const tools = element("div", "live-tools");
    tools.append(ui.pen, ui.eraser, clear, brushLabel);

    const input = element("div", "live-input");
    input.append(ui.canvas, ui.source, tools);
    return input;
  }

  /** The prediction: the five likeliest classes as bars, and the verdict in words. */
  function buildPrediction() {
    const prediction = element("div", "live-prediction");
    prediction.appendChild(element("h3", "live-heading", "Top five classes"));
    const list = element("ol", "live-top5");
    list.setAttribute("aria-label", "The five likeliest classes and their probabilities");
    ui.rows = [];
    for (let k = 0; k < 5; k++) {
      const row = element("li", "live-row");
      const name = element("span", "live-class");
      const bar = element("span", "live-bar");
      const fill = element("span", "live-fill");
      const value = element("span", "live-value");
      bar.appendChild(fill);
      bar.setAttribute("aria-hidden", "true");
      row.append(name, bar, value);
      list.appendChild(row);
      ui.rows.push({ name, fill, value });
    }
    ui.verdict = element("p", "live-verdict");
    // Screen readers hear the top class when it changes, not every stroke's percentages.
    ui.announce = element("p", "live-visually-hidden");
    ui.announce.setAttribute("aria-live", "polite");
    prediction.append(list, ui.verdict, ui.announce);
    return prediction;
  }

  /** The picker: a few Fashion-MNIST test images, as buttons. */
  function buildPicker() {
    const picker = element("fieldset", "live-picker");
    picker.appendChild(element("legend", "", "Fashion-MNIST test images"));
    const thumbs = element("div", "live-thumbs");
    ui.thumbs = state.samples.labels.map((label, k) => {
      const name = state.meta.classes[label];
      const button = element("button", "live-thumb");
      button.type = "button";
      button.setAttribute("aria-label", `Test image ${state.samples.indices[k]}: ${name}`);
      button.title = name;
      const thumb = element("canvas");
      thumb.width = SIZE;
      thumb.height = SIZE;
      paintGray(thumb, sample(k), 1);
      button.appendChild(thumb);
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", () => { pick(k); update(); });
      thumbs.appendChild(button);
      return button;
    });
    picker.appendChild(thumbs);
    return picker;
  }

  /** The feature maps' heading, how to read their colours, and the choice of colour scale. */
  function buildLayerHeader() {
    const heading = element("h3", "live-heading", "Feature maps, layer by layer");
    const legend = element("p", "live-note",
      "Each small square is one feature map (one channel). Colours: dark violet is zero and yellow " +
      "the largest value; where a layer has negative values (tanh), blue is negative, white zero " +
      "and red positive. Each layer has its own scale, given above it; one scale per map shows " +
      "the pattern inside weak maps too, but no longer which maps are strong.");
    const [scale] = radios("Colour scale", "scale", [[false, "one per layer"], [true, "one per map"]].map(
      ([perMap, text]) => [text, perMap === state.perMap, () => { state.perMap = perMap; update(); }]));
    return [heading, legend, scale];
  }

  function toolButton(text, tool) {
    const button = element("button", "live-button", text);
    button.type = "button";
    button.setAttribute("aria-pressed", String(state.tool === tool));
    button.addEventListener("click", () => {
      state.tool = tool;
      ui.pen.setAttribute("aria-pressed", String(tool === "pen"));
      ui.eraser.setAttribute("aria-pressed", String(tool === "eraser"));
    });
    return button;
  }

  /** Switch to network `name`: its panels of feature maps, then a prediction. */
  async function choose(name) {
    const model = modelMeta(name);
    state.model = model;
    ui.modelInputs.forEach((input) => { input.checked = input.value === name; });
    ui.layers.replaceChildren();
    ui.maps = model.outputs.slice(1).map((output) => {
      const [, channels, height, width] = output.shape;
      const cols = channels <= 8 ? channels : channels <= 16 ? 8 : 16;
      const rows = Math.ceil(channels / cols);
      const figure = element("figure", "live-layer");
      const caption = element("figcaption", "live-caption");
      const title = element("span", "live-layer-title", output.label);
      const shape = element("span", "live-note", ` ${channels} maps of ${height} \u00d7 ${width}`);
      const range = element("span", "live-note live-range");
      caption.append(title, shape, range);
      const canvas = element("canvas", "live-mosaic");
      canvas.width = cols * (width + 1) - 1;
      canvas.height = rows * (height + 1) - 1;
      // Show each map pixel at 3 to 10 screen pixels, never wider than the column.
      canvas.style.width = `${Math.min(10, Math.max(3, Math.floor(640 / canvas.width))) * canvas.width}px`;
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `${output.label}: ${channels} feature maps of ${height} by ${width}`);
      figure.append(caption, canvas);
      ui.layers.appendChild(figure);
      return { output, canvas, range, cols, channels, height, width };
    });
    setStatus(`Loading ${model.title}\u2026`);
    await sessionFor(name);
    if (state.model === model) { // the reader may have chosen another network meanwhile
      setStatus(`${model.title} runs in your browser. Draw, or pick a test image.`);
      update();
    }
  }

  /** The bytes of test image `k` of the picker. */
  function sample(k) {
    return state.samples.pixels.subarray(k * SIZE * SIZE, (k + 1) * SIZE * SIZE);
  }

  /** Make test image `k` the input. */
  function pick(k) {
    const pixels = sample(k);
    const scale = state.model.input.scale; // 1/255: bytes to [0, 1], as the network was trained
    for (let i = 0; i < pixels.length; i++) {
      state.ink[i] = pixels[i] * scale;
    }
    markPicked(k);
    const label = state.meta.classes[state.samples.labels[k]];
    state.source = `Test image ${state.samples.indices[k]}, labelled \u201c${label}\u201d. Draw on it to change it.`;
    drawInput();
  }

  /** Show which test image is the input (none: -1). */
  function markPicked(k) {
    ui.thumbs.forEach((button, i) => button.setAttribute("aria-pressed", String(i === k)));
  }

  // --- Drawing ------------------------------------------------------------------------

  function listenForStrokes(canvas) {
    let last = null; // the previous point of the stroke, in grid coordinates
    const toGrid = (event) => { // inside the border: client* sizes leave it out
      const box = canvas.getBoundingClientRect();
      return [(event.clientX - box.left - canvas.clientLeft) / canvas.clientWidth * SIZE,
              (event.clientY - box.top - canvas.clientTop) / canvas.clientHeight * SIZE];
    };
    canvas.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) {
        return;
      }
      event.preventDefault();
      try {
        canvas.setPointerCapture(event.pointerId); // keep the stroke when the pointer leaves the canvas
      } catch (error) {
        // A synthetic pointer has nothing to capture; the stroke still works inside the canvas.
      }
      last = toGrid(event);
      stroke(last, last);
      if (!state.source.startsWith("Your drawing")) {
        state.source = "Your drawing.";
        markPicked(-1);
      }
      drawInput();
      update();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (last === null) {
        return;
      }
      const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
      for (const e of events.length ? events : [event]) {
        const point = toGrid(e);
        stroke(last, point);
        last = point;
      }
      drawInput();
      update();
    });
    const end = () => { last = null; };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
  }

  /** Paint (or erase) a line from a to b with a round, anti-aliased brush. */
  function stroke(a, b) {
    const r = state.brush;
    const steps = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) * 4));
    for (let s = 0; s <= steps; s++) {
      const x = a[0] + (b[0] - a[0]) * s / steps;
      const y = a[1] + (b[1] - a[1]) * s / steps;
      for (let row = Math.max(0, Math.floor(y - r - 1)); row <= Math.min(SIZE - 1, Math.ceil(y + r)); row++) {
        for (let col = Math.max(0, Math.floor(x - r - 1)); col <= Math.min(SIZE - 1, Math.ceil(x + r)); col++) {
          // Coverage of the pixel's centre by the disc, with a one-pixel soft edge.
          const d = Math.hypot(col + 0.5 - x, row + 0.5 - y);
          const cover = Math.min(1, Math.max(0, r + 0.5 - d));
          const i = row * SIZE + col;
          state.ink[i] = state.tool === "pen" ? Math.max(state.ink[i], cover) : Math.min(state.ink[i], 1 - cover);
        }
      }
    }
  }

  // --- Painting pictures -------------------------------------------------------------------

  function drawInput() {
    paintGray(ui.canvas, state.ink, 255);
    ui.source.textContent = state.source;
  }

  /** Put grey values (times `gain` to make bytes) onto a canvas of the same size. */
  function paintGray(canvas, values, gain) {
    const image = new ImageData(canvas.width, canvas.height);
    const px = image.data;
    for (let i = 0; i < values.length; i++) {
      const v = Math.round(values[i] * gain);
      px[4 * i] = px[4 * i + 1] = px[4 * i + 2] = v;
      px[4 * i + 3] = 255;
    }
    canvas.getContext("2d").putImageData(image, 0, 0);
  }

  /** A 256-entry lookup table (flat r, g, b) interpolated between evenly spaced colours. */
  function lookup(stops) {
    const table = new Uint8Array(3 * 256);
    for (let n = 0; n < 256; n++) {
      const x = n / 255 * (stops.length - 1);
      const i = Math.min(stops.length - 2, Math.floor(x));
      for (let k = 0; k < 3; k++) {
        table[3 * n + k] = Math.round(stops[i][k] + (stops[i + 1][k] - stops[i][k]) * (x - i));
      }
    }
    return table;
  }
  // Viridis at nine stops, for maps without negative values (ReLU, pooling).
  const VIRIDIS = lookup([[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
                          [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]]);
  // Blue, white, red (ColorBrewer's RdBu, reversed), for maps with negative values (tanh).
  const DIVERGING = lookup([[33, 102, 172], [103, 169, 207], [209, 229, 240], [247, 247, 247],
                            [253, 219, 199], [239, 138, 98], [178, 24, 43]]);

  function range(data, from, to) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = from; i < to; i++) {
      lo = Math.min(lo, data[i]);
      hi = Math.max(hi, data[i]);
    }
    return [lo, hi];
  }

  /** Tile a layer's maps into its canvas, on one colour scale per layer (or per map). */
  function paintMaps(panel, data) {
    const { canvas, cols, channels, height, width } = panel;
    const area = height * width;
    const [lo, hi] = range(data, 0, data.length);
    // Signed values: white is zero and the scale is symmetric; else 0 to the largest value.
    const signed = lo < 0;
    const table = signed ? DIVERGING : VIRIDIS;
    const image = new ImageData(canvas.width, canvas.height); // gaps stay transparent
    const px = image.data;
    for (let c = 0; c < channels; c++) {
      const [a, b] = state.perMap ? range(data, c * area, (c + 1) * area) : [lo, hi];
      const top = (signed ? Math.max(-a, b) : b) || 1;
      const x0 = (c % cols) * (width + 1);
      const y0 = Math.floor(c / cols) * (height + 1);
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const v = data[c * area + y * width + x];
          const t = signed ? 0.5 + v / (2 * top) : v / top;
          const n = 3 * Math.round(255 * Math.min(1, Math.max(0, t)));
          const at = 4 * ((y0 + y) * canvas.width + x0 + x);
          px[at] = table[n];
          px[at + 1] = table[n + 1];
          px[at + 2] = table[n + 2];
          px[at + 3] = 255;
        }
      }
    }
    canvas.getContext("2d").putImageData(image, 0, 0);
    panel.range.textContent = ` \u00b7 values from ${lo.toFixed(2)} to ${hi.toFixed(2)}`;
  }

  /** Show one prediction: the bars, the announcement and every layer's maps. */
  function show(model, outputs) {
    const logits = Array.from(outputs[model.outputs[0].name].data); // the first output: the logits
    const p = softmax(logits);
    const order = p.map((v, k) => k).sort((a, b) => p[b] - p[a]);
    ui.rows.forEach((row, k) => {
      const c = order[k];
      row.name.textContent = state.meta.classes[c];
      row.fill.style.width = `${(100 * p[c]).toFixed(1)}%`;
      row.value.textContent = `${(100 * p[c]).toFixed(1)}%`;
    });
    const verdict = `${model.title} says: ${state.meta.classes[order[0]]}`;
    ui.verdict.textContent = `${verdict} (${(100 * p[order[0]]).toFixed(1)}%).`;
    if (verdict !== state.lastVerdict) {
      state.lastVerdict = verdict;
      ui.announce.textContent = `${verdict}.`;
    }
    ui.maps.forEach((panel) => paintMaps(panel, outputs[panel.output.name].data));
    api.lastResult = { model: model.name, logits };
    if (api.timing.firstPrediction === undefined) {
      api.timing.firstPrediction = performance.now(); // ms since the navigation started
      shown();
    }
  }

  // --- Messages ------------------------------------------------------------------------

  function setStatus(text) {
    ui.status.textContent = text;
  }

  function showError(error) {
    ui.status.textContent = "";
    const box = ui.status;
    box.setAttribute("role", "alert");
    box.classList.add("live-error");
    box.append("The live figure could not start: ", element("code", "", String(error && error.message || error)),
               ". Reload the page; if that does not help, serve the site yourself (see below the figure).");
  }

  /** Opened from file://: say how to serve the folder, with the page's own address. */
  function showServeMessage() {
    let folder = decodeURIComponent(SITE.pathname);
    if (/^\/[A-Za-z]:\//.test(folder)) {
      folder = folder.slice(1); // file:///C:/... on Windows
    }
    const page = location.pathname.slice(SITE.pathname.length);
    const box = ui.status;
    box.classList.add("live-serve");
    box.replaceChildren(
      element("strong", "", "This figure needs a web server. "),
      "Your browser opened this page as a file, and browsers do not fetch the networks or run " +
      "WebAssembly for pages opened from files. Serve the book's folder and open the page from there:");
    const code = element("pre", "live-commands");
    code.textContent = `cd "${folder}"\npython -m http.server 8000`;
    const link = element("p", "", "then open ");
    const address = element("a", "", `http://localhost:8000/${page}`);
    address.href = address.textContent;
    link.appendChild(address);
    link.append(" (the rest of the book works from files as it is).");
    box.after(code, link);
  }

  start();
})();
