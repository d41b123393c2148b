// s2clouds annotate: the canvas front end. Plain JavaScript, no build step.
//
// The image is drawn from PNG tiles of the server at the zoom level; the labels live here
// as two byte arrays on the image's grid (canonical classes, 255 = unlabelled):
//   scribbles: what the annotator painted (the assistant learns from these),
//   mask:      the full mask (strokes plus accepted proposals), which is saved.
"use strict";

(() => {
  const NONE = 255;
  const $ = (id) => document.getElementById(id);

  async function api(path, options = {}) {
    const headers = { ...(options.headers || {}), "X-S2clouds": "1" };
    const response = await fetch(path, { ...options, headers });
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return response;
  }

  function decode64(text) {
    const raw = atob(text);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  // ---------------------------------------------------------------- progress page
  async function progressPage() {
    const data = await (await api("api/progress")).json();
    $("project-name").textContent = `Progress: ${data.name}`;
    const users = data.images.length ? Object.keys(data.images[0].users) : [];
    $("progress").tHead.innerHTML = "";
    const head = $("progress").tHead.insertRow();
    for (const title of ["image", ...users.map((u) => `${u}: saved / labelled / time`)]) {
      const th = document.createElement("th");
      th.textContent = title;
      head.appendChild(th);
    }
    const body = $("progress").tBodies[0];
    for (const row of data.images) {
      const tr = body.insertRow();
      tr.insertCell().textContent = row.image;
      for (const user of users) {
        const u = row.users[user];
        const minutes = (u.seconds / 60).toFixed(1);
        tr.insertCell().textContent = u.saved
          ? `${u.saved_at} · ${(100 * u.labelled).toFixed(0)} % · ${minutes} min`
          : "not started";
      }
    }
  }

  if (document.body.id === "progress-page") {
    progressPage().catch((e) => { document.body.append(`error: ${e.message}`); });
    return;
  }

  // ---------------------------------------------------------------- state
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const state = {
    project: null, image: null, user: null, view: "truecolor",
    width: 0, height: 0, scale: 1, ox: 0, oy: 0,
    compare: null, tool: "brush", cls: 0, size: 8, opacity: 0.55, showMask: true,
    mask: null, scribbles: null, proposal: null, next: null,
    undo: [], redo: [], before: null, polygon: [], busy: false,
    dirty: false, lastAgreement: null,
    stretch: {},        // view -> [low, high] percentiles
    active: 0, lastActivity: performance.now(),  // seconds spent, idle minutes left out
  };
  const colours = new Map();   // class value -> [r, g, b]
  const tiles = new Map();     // url -> HTMLImageElement
  let overlay = null;          // canvas with the mask at image resolution
  let overlayData = null;
  let pointer = null;          // last pointer position (image px)
  let drag = null;             // {kind: "paint" | "pan", ...}

  function status(text, error = false) {
    $("status").textContent = text;
    $("status").classList.toggle("error", error);
  }

  // ---------------------------------------------------------------- coordinates
  function resize() {
    const r = canvas.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(r.width * devicePixelRatio));
    canvas.height = Math.max(1, Math.round(r.height * devicePixelRatio));
    draw();
  }
  const toImage = (cx, cy) => {
    const r = canvas.getBoundingClientRect();
    let x = (cx - r.left) * devicePixelRatio;
    const y = (cy - r.top) * devicePixelRatio;
    if (state.compare && x >= paneWidth()) x -= paneWidth();  // the right pane maps the same
    return [(x - state.ox) / state.scale, (y - state.oy) / state.scale];
  };
  const toClient = (ix, iy) => {
    const r = canvas.getBoundingClientRect();
    return [r.left + (ix * state.scale + state.ox) / devicePixelRatio,
            r.top + (iy * state.scale + state.oy) / devicePixelRatio];
  };
  function fit() {
    if (!state.width) return;
    state.scale = Math.min(paneWidth() / state.width, canvas.height / state.height) * 0.98;
    state.ox = (paneWidth() - state.width * state.scale) / 2;
    state.oy = (canvas.height - state.height * state.scale) / 2;
    draw();
  }
  function zoomAt(factor, sx = paneWidth() / 2, sy = canvas.height / 2) {
    const scale = Math.min(64, Math.max(0.02, state.scale * factor));
    state.ox = sx - (sx - state.ox) * (scale / state.scale);
    state.oy = sy - (sy - state.oy) * (scale / state.scale);
    state.scale = scale;
    draw();
  }

  // ---------------------------------------------------------------- drawing
  function tileUrl(view, level, tx, ty) {
    const [lo, hi] = state.stretch[view] || [2, 98];
    return `api/images/${state.image}/tiles/${view}/${level}/${tx}/${ty}.png?lo=${lo}&hi=${hi}`;
  }
  function tile(url) {
    let img = tiles.get(url);
    if (!img) {
      img = new Image();
      img.onload = () => draw();
      img.src = url;
      tiles.set(url, img);
      if (tiles.size > 600) tiles.delete(tiles.keys().next().value);
    }
    return img;
  }
  let frame = 0;
  function draw() {
    if (frame) return;
    frame = requestAnimationFrame(() => { frame = 0; render(); });
  }
  // side by side: two panes of the same width, the same zoom and pan, different views
  const paneWidth = () => (state.compare ? Math.floor(canvas.width / 2) : canvas.width);
  function render() {
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!state.width) return;
    const width = paneWidth();
    renderPane(state.view, 0, width);
    if (state.compare) {
      renderPane(state.compare, width, width);
      ctx.fillStyle = "#888";
      ctx.fillRect(width - devicePixelRatio, 0, 2 * devicePixelRatio, canvas.height);
    }
  }
  function renderPane(view, left, width) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, 0, width, canvas.height);
    ctx.clip();
    ctx.translate(left, 0);
    const level = Math.max(0, Math.min(16, Math.floor(Math.log2(1 / state.scale))));
    const span = state.project.tile * 2 ** level;
    const [x0, y0] = [(-state.ox) / state.scale, (-state.oy) / state.scale];
    const [x1, y1] = [(width - state.ox) / state.scale, (canvas.height - state.oy) / state.scale];
    ctx.imageSmoothingEnabled = state.scale < 1;
    for (let ty = Math.max(0, Math.floor(y0 / span)); ty * span < Math.min(state.height, y1); ty++) {
      for (let tx = Math.max(0, Math.floor(x0 / span)); tx * span < Math.min(state.width, x1); tx++) {
        const img = tile(tileUrl(view, level, tx, ty));
        if (img.complete && img.naturalWidth) {
          ctx.drawImage(img, state.ox + tx * span * state.scale, state.oy + ty * span * state.scale,
            span * state.scale, span * state.scale);
        }
      }
    }
    if (state.showMask && overlay) {
      ctx.imageSmoothingEnabled = false;
      ctx.globalAlpha = state.opacity;
      ctx.drawImage(overlay, state.ox, state.oy, state.width * state.scale, state.height * state.scale);
      ctx.globalAlpha = 1;
    }
    if (state.next) {
      const n = state.next;
      ctx.strokeStyle = "#ffeb3b";
      ctx.lineWidth = 2 * devicePixelRatio;
      ctx.setLineDash([8, 6]);
      ctx.strokeRect(state.ox + n.col * state.scale, state.oy + n.row * state.scale,
        n.width * state.scale, n.height * state.scale);
      ctx.setLineDash([]);
    }
    if (state.polygon.length) {
      ctx.strokeStyle = "#ff0";
      ctx.lineWidth = 1.5 * devicePixelRatio;
      ctx.beginPath();
      for (const [x, y] of [...state.polygon, ...(pointer ? [pointer] : [])]) {
        ctx.lineTo(state.ox + x * state.scale, state.oy + y * state.scale);
      }
      ctx.stroke();
    }
    if (pointer && (state.tool === "brush" || state.tool === "eraser")) {
      ctx.strokeStyle = state.tool === "eraser" ? "#f55" : "#fff";
      ctx.lineWidth = devicePixelRatio;
      ctx.beginPath();
      ctx.arc(state.ox + pointer[0] * state.scale, state.oy + pointer[1] * state.scale,
        Math.max(1, state.size / 2 * state.scale), 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.restore();
  }

  // the overlay shows the proposal (where nothing is painted) while one is pending
  function shown(i) {
    if (state.proposal && state.scribbles[i] === NONE) return state.proposal[i];
    return state.mask[i];
  }
  function paintOverlay(x0 = 0, y0 = 0, x1 = state.width, y1 = state.height) {
    if (!overlay) return;
    const d = overlayData.data;
    for (let y = y0; y < y1; y++) {
      for (let x = x0, i = y * state.width + x0; x < x1; x++, i++) {
        const v = shown(i);
        const c = colours.get(v);
        const j = 4 * i;
        if (c) { d[j] = c[0]; d[j + 1] = c[1]; d[j + 2] = c[2]; d[j + 3] = 255; } else { d[j + 3] = 0; }
      }
    }
    overlay.getContext("2d").putImageData(overlayData, 0, 0, x0, y0, x1 - x0, y1 - y0);
    draw();
  }

  // ---------------------------------------------------------------- edits with undo
  function beginEdit() {
    state.before = { mask: state.mask.slice(), scribbles: state.scribbles.slice() };
  }
  function endEdit() {
    const before = state.before;
    state.before = null;
    if (!before) return;
    const w = state.width;
    let x0 = w, y0 = state.height, x1 = -1, y1 = -1;
    for (let i = 0; i < state.mask.length; i++) {
      if (before.mask[i] !== state.mask[i] || before.scribbles[i] !== state.scribbles[i]) {
        const x = i % w, y = (i - x) / w;
        if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
      }
    }
    if (x1 < 0) return;
    const box = { x0, y0, x1: x1 + 1, y1: y1 + 1 };
    state.undo.push({ box, before: crop(before, box), after: crop(state, box) });
    if (state.undo.length > 100) state.undo.shift();
    state.redo = [];
    state.dirty = true;
  }
  function crop(src, { x0, y0, x1, y1 }) {
    const out = { mask: new Uint8Array((x1 - x0) * (y1 - y0)), scribbles: new Uint8Array((x1 - x0) * (y1 - y0)) };
    for (let y = y0, k = 0; y < y1; y++, k += x1 - x0) {
      out.mask.set(src.mask.subarray(y * state.width + x0, y * state.width + x1), k);
      out.scribbles.set(src.scribbles.subarray(y * state.width + x0, y * state.width + x1), k);
    }
    return out;
  }
  function paste(part, { x0, y0, x1, y1 }) {
    for (let y = y0, k = 0; y < y1; y++, k += x1 - x0) {
      state.mask.set(part.mask.subarray(k, k + x1 - x0), y * state.width + x0);
      state.scribbles.set(part.scribbles.subarray(k, k + x1 - x0), y * state.width + x0);
    }
    paintOverlay(x0, y0, x1, y1);
  }
  function undo() {
    const step = state.undo.pop();
    if (!step) return;
    paste(step.before, step.box);
    state.redo.push(step);
    state.dirty = true;
    status("undone");
  }
  function redo() {
    const step = state.redo.pop();
    if (!step) return;
    paste(step.after, step.box);
    state.undo.push(step);
    state.dirty = true;
    status("redone");
  }

  function setPixel(i, value) {
    state.mask[i] = value;
    state.scribbles[i] = value;
  }
  function stamp(cx, cy) {
    const r = Math.max(0.5, state.size / 2);
    const value = state.tool === "eraser" ? NONE : state.cls;
    const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(state.width, Math.ceil(cx + r));
    const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(state.height, Math.ceil(cy + r));
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r) setPixel(y * state.width + x, value);
      }
    }
    if (x1 > x0 && y1 > y0) paintOverlay(x0, y0, x1, y1);
  }
  function strokeTo(x, y) {
    const [px, py] = drag.last;
    const steps = Math.max(1, Math.ceil(Math.hypot(x - px, y - py) / Math.max(0.5, state.size / 4)));
    for (let s = 1; s <= steps; s++) stamp(px + (x - px) * s / steps, py + (y - py) * s / steps);
    drag.last = [x, y];
  }

  function fillPolygon() {
    const pts = state.polygon;
    state.polygon = [];
    if (pts.length < 3) { draw(); return; }
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
    const x0 = Math.max(0, Math.floor(Math.min(...xs))), x1 = Math.min(state.width, Math.ceil(Math.max(...xs)));
    const y0 = Math.max(0, Math.floor(Math.min(...ys))), y1 = Math.min(state.height, Math.ceil(Math.max(...ys)));
    if (x1 <= x0 || y1 <= y0) { draw(); return; }
    const off = document.createElement("canvas");
    off.width = x1 - x0; off.height = y1 - y0;
    const c = off.getContext("2d");
    c.beginPath();
    for (const [x, y] of pts) c.lineTo(x - x0, y - y0);
    c.closePath();
    c.fill();
    const alpha = c.getImageData(0, 0, off.width, off.height).data;
    beginEdit();
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        if (alpha[4 * ((y - y0) * off.width + (x - x0)) + 3] > 127) setPixel(y * state.width + x, state.cls);
      }
    }
    endEdit();
    paintOverlay(x0, y0, x1, y1);
    status(`polygon filled with ${className(state.cls)}`);
  }

  async function flood(x, y) {
    const tolerance = $("tolerance").value / 100;
    const r = await (await api(`api/images/${state.image}/flood?row=${Math.floor(y)}&col=${Math.floor(x)}&tolerance=${tolerance}`)).json();
    const region = decode64(r.region);
    beginEdit();
    for (let j = 0; j < r.height; j++) {
      for (let i = 0; i < r.width; i++) {
        if (region[j * r.width + i]) setPixel((r.row + j) * state.width + r.col + i, state.cls);
      }
    }
    endEdit();
    paintOverlay(r.col, r.row, r.col + r.width, r.row + r.height);
    status(`flood fill: ${r.pixels} px of ${className(state.cls)}`);
  }

  // ---------------------------------------------------------------- assistant
  async function predict(shipped = false) {
    if (state.busy) return;
    state.busy = true;
    status(shipped ? "running the shipped model…" : "assistant: fitting the pixel model on your strokes…");
    try {
      const r = await (await api(`api/images/${state.image}/${shipped ? "model" : "predict"}`, shipped
        ? { method: "POST" }
        : { method: "POST", body: state.scribbles, headers: { "Content-Type": "application/octet-stream" } })).json();
      state.proposal = decode64(r.mask);
      state.next = r.next;
      $("accept").disabled = $("reject").disabled = false;
      $("next").disabled = !r.next;
      paintOverlay();
      const counts = Object.entries(r.scribbled).map(([k, v]) => `${k} ${v}`).join(", ");
      const source = shipped ? "the shipped model" : `fitted on ${counts}`;
      status(`proposal ready in ${r.seconds} s (${source}): A accepts, Esc discards; the dashed box is where the model is least certain`);
    } catch (e) {
      status(`assistant: ${e.message}`, true);
    } finally {
      state.busy = false;
    }
  }
  function accept() {
    if (!state.proposal) return;
    beginEdit();
    for (let i = 0; i < state.mask.length; i++) {
      if (state.scribbles[i] === NONE) state.mask[i] = state.proposal[i];
    }
    state.proposal = null;
    endEdit();
    $("accept").disabled = $("reject").disabled = true;
    paintOverlay();
    status("proposal accepted: correct it with the brush, predict again, or save");
  }
  function reject() {
    state.proposal = null;
    $("accept").disabled = $("reject").disabled = true;
    paintOverlay();
    status("proposal discarded");
  }
  function goNext() {
    const n = state.next;
    if (!n) return;
    const scale = Math.min(paneWidth() / (n.width * 3), canvas.height / (n.height * 3));
    state.scale = Math.max(state.scale, scale);
    state.ox = paneWidth() / 2 - (n.col + n.width / 2) * state.scale;
    state.oy = canvas.height / 2 - (n.row + n.height / 2) * state.scale;
    draw();
    status(`least certain region: rows ${n.row}-${n.row + n.height}, columns ${n.col}-${n.col + n.width}`);
  }

  // ---------------------------------------------------------------- save and load
  async function save() {
    if (state.busy) return;
    state.busy = true;
    touch();
    const seconds = state.active;
    const body = new Uint8Array(2 * state.mask.length);
    body.set(state.mask, 0);
    body.set(state.scribbles, state.mask.length);
    try {
      const r = await (await api(`api/images/${state.image}/annotation?user=${state.user}&seconds=${seconds.toFixed(1)}`, {
        method: "PUT", body, headers: { "Content-Type": "application/octet-stream" },
      })).json();
      state.active = 0;
      state.dirty = false;
      status(`saved ${r.saved}`);
      await showAgreement();
    } catch (e) {
      status(`save failed: ${e.message}`, true);
    } finally {
      state.busy = false;
    }
  }
  async function showAgreement() {
    const a = await (await api(`api/images/${state.image}/agreement`)).json();
    state.lastAgreement = a;
    const box = $("agreement");
    box.innerHTML = "";
    const rows = [
      ...a.reference.map((r) => [`${r.user} vs reference`, r]),
      ...a.pairs.map((p) => [`${p.a} vs ${p.b}`, p]),
    ];
    if (!rows.length) { box.textContent = "No reference and no second annotator yet."; return; }
    for (const [title, r] of rows) {
      const table = document.createElement("table");
      const caption = table.createCaption();
      caption.textContent = title;
      const head = table.insertRow();
      for (const t of ["class", "F1", "IoU"]) { const th = document.createElement("th"); th.textContent = t; head.appendChild(th); }
      for (const [name, s] of Object.entries(r.classes)) {
        const tr = table.insertRow();
        tr.insertCell().textContent = name;
        tr.insertCell().textContent = s.f1.toFixed(3);
        tr.insertCell().textContent = s.iou.toFixed(3);
      }
      box.appendChild(table);
    }
  }

  async function openImage() {
    const id = $("image").value;
    const info = await (await api(`api/images/${id}`)).json();
    Object.assign(state, {
      image: id, width: info.width, height: info.height, proposal: null, next: null,
      undo: [], redo: [], polygon: [], active: 0, lastActivity: performance.now(), dirty: false,
    });
    const select = $("view"), compare = $("compare");
    select.innerHTML = "";
    compare.innerHTML = "";
    compare.add(new Option("none", ""));
    for (const v of info.views) {
      select.add(new Option(v.title, v.name));
      compare.add(new Option(v.title, v.name));
    }
    if (!info.views.some((v) => v.name === state.view)) state.view = info.views[0].name;
    if (!info.views.some((v) => v.name === state.compare)) state.compare = null;
    setView(state.view);
    compare.value = state.compare || "";
    const n = info.width * info.height;
    state.mask = new Uint8Array(n).fill(NONE);
    state.scribbles = new Uint8Array(n).fill(NONE);
    const saved = new Uint8Array(await (await api(`api/images/${id}/annotation?user=${state.user}`)).arrayBuffer());
    if (saved.length === 2 * n) {  // empty (204) when not saved yet
      state.mask.set(saved.subarray(0, n));
      state.scribbles.set(saved.subarray(n));
    }
    overlay = document.createElement("canvas");
    overlay.width = info.width; overlay.height = info.height;
    overlayData = overlay.getContext("2d").createImageData(info.width, info.height);
    $("accept").disabled = $("reject").disabled = $("next").disabled = true;
    $("agreement").textContent = "";
    paintOverlay();
    fit();
    status(`${id}: ${info.width} x ${info.height} px, bands ${info.bands.join(" ")}, ${info.resolution} m · paint strokes of two classes or more, then Predict (P)`);
  }

  // ---------------------------------------------------------------- time spent
  // time between two actions counts when they are less than IDLE apart: pauses do not count
  const IDLE = 60_000;
  function touch() {
    const now = performance.now();
    const gap = now - state.lastActivity;
    if (gap < IDLE) state.active += gap / 1000;
    state.lastActivity = now;
  }
  for (const type of ["pointerdown", "keydown", "wheel"]) document.addEventListener(type, touch, true);
  canvas.addEventListener("pointermove", () => { if (drag) touch(); });

  // ---------------------------------------------------------------- controls
  function setView(view) {
    state.view = view;
    $("view").value = view;
    const [lo, hi] = state.stretch[view] || [2, 98];
    $("stretch-lo").value = lo;
    $("stretch-hi").value = hi;
    draw();
  }
  function setCompare(view) {
    state.compare = view;
    $("compare").value = view || "";
    fit();  // each pane shows the whole image again
  }
  const className = (v) => (state.project.classes.find((c) => c.value === v) || { name: v }).name;
  function setTool(tool) {
    if (state.polygon.length && tool !== "polygon") { state.polygon = []; }
    state.tool = tool;
    for (const b of document.querySelectorAll(".tool")) b.classList.toggle("active", b.dataset.tool === tool);
    draw();
  }
  function setClass(value) {
    state.cls = value;
    if (state.tool === "eraser") setTool("brush");
    for (const b of document.querySelectorAll(".class")) b.classList.toggle("active", Number(b.dataset.value) === value);
  }
  function setSize(size) {
    state.size = Math.max(1, Math.min(200, Math.round(size)));
    $("size").textContent = state.size;
    draw();
  }

  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  canvas.addEventListener("pointerdown", (e) => {
    if (!state.mask) return;
    canvas.setPointerCapture(e.pointerId);
    const [x, y] = toImage(e.clientX, e.clientY);
    if (e.button === 1 || e.button === 2 || spaceDown) {
      drag = { kind: "pan", sx: e.clientX, sy: e.clientY, ox: state.ox, oy: state.oy };
      return;
    }
    if (state.tool === "brush" || state.tool === "eraser") {
      beginEdit();
      drag = { kind: "paint", last: [x, y] };
      stamp(x, y);
    } else if (state.tool === "polygon") {
      state.polygon.push([x, y]);
      draw();
    } else if (state.tool === "flood") {
      if (x >= 0 && y >= 0 && x < state.width && y < state.height) flood(x, y).catch((err) => status(err.message, true));
    }
  });
  canvas.addEventListener("pointermove", (e) => {
    pointer = toImage(e.clientX, e.clientY);
    if (drag && drag.kind === "pan") {
      state.ox = drag.ox + (e.clientX - drag.sx) * devicePixelRatio;
      state.oy = drag.oy + (e.clientY - drag.sy) * devicePixelRatio;
    } else if (drag && drag.kind === "paint") {
      strokeTo(...pointer);
    }
    draw();
  });
  const release = () => {
    if (drag && drag.kind === "paint") endEdit();
    drag = null;
  };
  canvas.addEventListener("pointerup", release);
  canvas.addEventListener("pointercancel", release);
  canvas.addEventListener("pointerleave", () => { pointer = null; draw(); });
  canvas.addEventListener("dblclick", () => { if (state.tool === "polygon") fillPolygon(); });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    let sx = (e.clientX - r.left) * devicePixelRatio;
    if (state.compare && sx >= paneWidth()) sx -= paneWidth();
    zoomAt(e.deltaY < 0 ? 1.2 : 1 / 1.2, sx, (e.clientY - r.top) * devicePixelRatio);
  }, { passive: false });

  let spaceDown = false;
  document.addEventListener("keyup", (e) => { if (e.key === " ") spaceDown = false; });
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    const k = e.key;
    const cls = state.project && state.project.classes.find((c) => c.key === k);
    if ((e.ctrlKey || e.metaKey) && (k === "z" || k === "Z")) { e.preventDefault(); (e.shiftKey ? redo : undo)(); return; }
    if ((e.ctrlKey || e.metaKey) && (k === "y" || k === "Y")) { e.preventDefault(); redo(); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (cls) setClass(cls.value);
    else if (k === "[") setSize(state.size / 1.25);
    else if (k === "]") setSize(state.size * 1.25 + 0.5);
    else if (k === "b" || k === "B") setTool("brush");
    else if (k === "e" || k === "E") setTool("eraser");
    else if (k === "g" || k === "G") setTool("polygon");
    else if (k === "f" || k === "F") setTool("flood");
    else if (k === "Enter" && state.tool === "polygon") fillPolygon();
    else if (k === "Escape") { if (state.polygon.length) { state.polygon = []; draw(); } else reject(); }
    else if (k === "p" || k === "P") predict();
    else if (k === "m" || k === "M") predict(true);
    else if (k === "a" || k === "A") accept();
    else if (k === "n" || k === "N") goNext();
    else if (k === "s" || k === "S") save();
    else if (k === "z" || k === "Z") undo();
    else if (k === "y" || k === "Y") redo();
    else if (k === "o" || k === "O") { state.showMask = !state.showMask; draw(); }
    else if (k === "v" || k === "V") {
      const s = $("view");
      setView(s.options[(s.selectedIndex + 1) % s.options.length].value);
    }
    else if (k === "c" || k === "C") {  // side by side with the next view, or back to one
      const views = [...$("view").options].map((o) => o.value);
      setCompare(state.compare ? null : views[(views.indexOf(state.view) + 1) % views.length]);
    }
    else if (k === "+" || k === "=") zoomAt(1.25);
    else if (k === "-") zoomAt(1 / 1.25);
    else if (k === "0") fit();
    else if (k === " ") { spaceDown = true; e.preventDefault(); }
    else if (k === "?" || k === "h" || k === "H") $("help").hidden = !$("help").hidden;
    else if (k.startsWith("Arrow")) {
      const step = 60 * devicePixelRatio;
      if (k === "ArrowLeft") state.ox += step; if (k === "ArrowRight") state.ox -= step;
      if (k === "ArrowUp") state.oy += step; if (k === "ArrowDown") state.oy -= step;
      e.preventDefault(); draw();
    }
  });

  $("predict").onclick = () => predict();
  $("help-button").onclick = () => { $("help").hidden = !$("help").hidden; };
  $("model").onclick = () => predict(true);
  $("accept").onclick = accept;
  $("reject").onclick = reject;
  $("next").onclick = goNext;
  $("save").onclick = save;
  $("undo").onclick = undo;
  $("redo").onclick = redo;
  $("zoom-fit").onclick = fit;
  $("zoom-in").onclick = () => zoomAt(1.25);
  $("zoom-out").onclick = () => zoomAt(1 / 1.25);
  $("opacity").oninput = (e) => { state.opacity = e.target.value / 100; draw(); };
  $("view").onchange = (e) => setView(e.target.value);
  $("compare").onchange = (e) => { setCompare(e.target.value || null); };
  $("stretch-lo").onchange = $("stretch-hi").onchange = () => {
    const lo = Number($("stretch-lo").value), hi = Number($("stretch-hi").value);
    if (lo >= 0 && hi <= 100 && lo < hi) { state.stretch[state.view] = [lo, hi]; draw(); }
    else status("stretch: give 0 <= low < high <= 100", true);
  };
  $("user").onchange = (e) => {
    if (state.dirty && !confirm("Unsaved changes on this image: switch user anyway?")) {
      e.target.value = state.user;
      return;
    }
    state.user = e.target.value;
    openImage().catch((err) => status(err.message, true));
  };
  $("image").onchange = () => {
    if (state.dirty && !confirm("Unsaved changes on this image: switch anyway?")) {
      $("image").value = state.image;
      return;
    }
    openImage().catch((err) => status(err.message, true));
  };
  for (const b of document.querySelectorAll(".tool")) b.onclick = () => setTool(b.dataset.tool);
  window.addEventListener("resize", resize);
  window.addEventListener("beforeunload", (e) => { if (state.dirty) e.preventDefault(); });

  async function start() {
    const project = await (await api("api/project")).json();
    state.project = project;
    $("project-name").textContent = project.name;
    document.title = `${project.name}: s2clouds annotate`;
    for (const u of project.users) $("user").add(new Option(u, u));
    state.user = project.users[0];
    for (const i of project.images) $("image").add(new Option(i.id, i.id));
    const box = $("classes");
    for (const c of project.classes) {
      const hex = c.colour.slice(1);
      colours.set(c.value, [0, 2, 4].map((k) => parseInt(hex.slice(k, k + 2), 16)));
      const b = document.createElement("button");
      b.className = "class";
      b.dataset.value = c.value;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = c.colour;
      b.append(swatch, `${c.name} (${c.key})`);
      b.onclick = () => setClass(c.value);
      box.appendChild(b);
    }
    setClass(project.classes[0].value);
    setTool("brush");
    setSize(8);
    resize();
    await openImage();
  }

  // for scripted use and tests: image <-> page coordinates and the state
  window.s2app = { state, toClient, toImage, fit, predict, accept, save, openImage, setCompare };
  start().catch((e) => status(`cannot start: ${e.message}`, true));
})();
