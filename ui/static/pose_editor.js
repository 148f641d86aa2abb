// ASTRA Studio skeleton editor: the body of gr.HTML's js_on_load (vanilla JS, no CDN).
// Gradio calls it with `element` (the component's root), `props` (props.value is the OpenPose
// JSON, props.editor_config the skeleton and presets from Python), `trigger` and `watch`.
// All editing happens here; the value is committed (props.value = ..., which fires "change",
// plus trigger("input")) once per gesture, on pointer-up, so dragging never waits for a server.

const CFG = props.editor_config;
const N = CFG.names.length;
const root = element.querySelector(".pe-root");
const stage = root.querySelector(".pe-stage");
const canvas = root.querySelector(".pe-canvas");
const ctx = canvas.getContext("2d");
const toolbar = root.querySelector(".pe-toolbar");
const statusLine = root.querySelector(".pe-status");
const EXTRA_KEYS = ["hand_left_keypoints_2d", "hand_right_keypoints_2d", "face_keypoints_2d"];
const MIRROR_EXTRA = { hand_left_keypoints_2d: "hand_right_keypoints_2d", hand_right_keypoints_2d: "hand_left_keypoints_2d" };
const COCO17 = ["nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
  "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle"];
const HISTORY_LIMIT = 100;
const subjectColors = CFG.subject_colors.slice();   // the Subjects panel may recolour/rename
let subjectNames = [];
function subjectColor(k) { return subjectColors[k % subjectColors.length]; }

// ---- state ------------------------------------------------------------------------------------
// scene = {w, h, people: [{kp: [[x, y, visible(bool)] x 18], subject: int|null, extras: {key: [numbers]}}]}
// Hidden joints keep their coordinates here, so "show" puts them back where they were.
let scene = { w: CFG.default_size[0], h: CFG.default_size[1], people: [] };
let sel = { p: -1, j: -1 };
const past = [], future = [];
let lastSignature = signature(scene);
const view = { zoom: 1, panX: 0, panY: 0, W: 0, H: 0 };
const bg = { img: null, url: null, opacity: 0.5 };
let drag = null;                       // the gesture in progress
const pointers = new Map();            // active pointers (pinch zoom on touch)
let frameQueued = false;
const drawTimes = [];                  // recent draw durations (ms), for the smoothness test
let spaceDown = false;

// ---- OpenPose in and out --------------------------------------------------------------------------
function clone(s) {
  return { w: s.w, h: s.h, people: s.people.map(p => ({ kp: p.kp.map(k => k.slice()), subject: p.subject,
    extras: Object.fromEntries(Object.entries(p.extras).map(([k, v]) => [k, v.slice()])) })) };
}
function round2(v) { return Math.round(v * 100) / 100; }
function toOpenPose(s) {
  return { canvas_width: s.w, canvas_height: s.h, people: s.people.map(p => {
    const flat = [];
    for (const [x, y, v] of p.kp) { if (v) flat.push(round2(x), round2(y), 1); else flat.push(0, 0, 0); }
    const out = { pose_keypoints_2d: flat };
    for (const [k, v] of Object.entries(p.extras)) out[k] = v.map(round2);
    if (p.subject !== null && p.subject !== undefined) out.subject = p.subject;
    return out;
  }) };
}
function signature(s) { return JSON.stringify(toOpenPose(s)); }

// Reads OpenPose JSON as ControlNet tools write it (pixels or [0,1], BODY-18 or COCO-17, a
// one-frame list). Throws Error with a sentence on anything else; Python re-validates anyway.
function fromOpenPose(data, previous) {
  if (typeof data === "string") { data = data.trim(); if (!data) return null; data = JSON.parse(data); }
  if (data === null || data === undefined || data === "") return null;
  if (Array.isArray(data)) {
    if (data.length !== 1) throw new Error(`expected one OpenPose frame, got a list of ${data.length}`);
    data = data[0];
  }
  if (typeof data !== "object" || !Array.isArray(data.people)) throw new Error('OpenPose JSON needs a "people" list');
  if (data.people.length > CFG.max_people) throw new Error(`at most ${CFG.max_people} people fit on the canvas`);
  const raw = data.people.map((p, n) => {
    let vals = p && p.pose_keypoints_2d;
    if (!Array.isArray(vals) || vals.some(v => typeof v !== "number" || !isFinite(v)))
      throw new Error(`person ${n + 1}: pose_keypoints_2d must be a list of numbers`);
    if (vals.length === 51) vals = coco17ToBody18(vals);
    else if (vals.length !== N * 3) throw new Error(`person ${n + 1}: pose_keypoints_2d needs 54 numbers (18 x [x, y, c]), got ${vals.length}`);
    const kp = [];
    for (let i = 0; i < N; i++) kp.push([vals[3 * i], vals[3 * i + 1], vals[3 * i + 2] > 0]);
    if (!kp.some(k => k[2])) throw new Error(`person ${n + 1} has no visible keypoint`);
    const extras = {};
    for (const key of EXTRA_KEYS) if (Array.isArray(p[key]) && p[key].length) extras[key] = p[key].slice();
    const subject = Number.isInteger(p.subject) && p.subject >= 0 && p.subject < CFG.max_subjects ? p.subject : null;
    return { kp, subject, extras };
  });
  const visible = raw.flatMap(p => p.kp.filter(k => k[2]).flatMap(k => [k[0], k[1]]));
  const normalised = visible.length > 0 && visible.every(v => v >= 0 && v <= 1);
  let w = data.canvas_width, h = data.canvas_height;
  if (!Number.isInteger(w) || !Number.isInteger(h)) {
    const maxX = Math.max(0, ...raw.flatMap(p => p.kp.filter(k => k[2]).map(k => k[0])));
    const maxY = Math.max(0, ...raw.flatMap(p => p.kp.filter(k => k[2]).map(k => k[1])));
    w = normalised ? 512 : Math.max(512, 64 * Math.ceil((maxX + 1) / 64));
    h = normalised ? 512 : Math.max(512, 64 * Math.ceil((maxY + 1) / 64));
  }
  if (w < CFG.canvas_min || h < CFG.canvas_min || w > CFG.canvas_max || h > CFG.canvas_max)
    throw new Error(`the canvas must be ${CFG.canvas_min} to ${CFG.canvas_max} pixels a side, got ${w}x${h}`);
  const out = { w, h, people: raw };
  for (const [i, p] of out.people.entries()) {
    if (normalised) for (const k of p.kp) if (k[2]) { k[0] *= w; k[1] *= h; }
    const prev = previous && previous.people[i];
    placeHidden(p, prev && prev.kp.length === N ? prev : null);
  }
  return out;
}

function coco17ToBody18(vals) {
  const out = new Array(N * 3).fill(0);
  COCO17.forEach((name, k) => {
    const i = CFG.names.indexOf(name);
    if (vals[3 * k + 2] > 0) { out[3 * i] = vals[3 * k]; out[3 * i + 1] = vals[3 * k + 1]; out[3 * i + 2] = 1; }
  });
  const rs = 3 * CFG.names.indexOf("r_shoulder"), ls = 3 * CFG.names.indexOf("l_shoulder");
  if (out[rs + 2] && out[ls + 2]) { out[3] = (out[rs] + out[ls]) / 2; out[4] = (out[rs + 1] + out[ls + 1]) / 2; out[5] = 1; }
  return out;
}

// Hidden joints arrive as [0, 0, 0]. Give them a plausible place (the previous one if the same
// joint was hidden here before, else the standing template fitted to the visible joints) so
// "show joint" brings them back near the body.
function placeHidden(p, prev) {
  const vis = p.kp.map((k, i) => [i, k]).filter(([, k]) => k[2]);
  let s = 1, tx = 0, ty = 0;
  if (vis.length >= 2) {
    const mt = mean(vis.map(([i]) => CFG.template[i])), mp = mean(vis.map(([, k]) => k));
    let num = 0, den = 0;
    for (const [i, k] of vis) {
      const ax = CFG.template[i][0] - mt[0], ay = CFG.template[i][1] - mt[1];
      num += ax * (k[0] - mp[0]) + ay * (k[1] - mp[1]); den += ax * ax + ay * ay;
    }
    s = den > 1e-9 && num > 0 ? num / den : 200;
    tx = mp[0] - s * mt[0]; ty = mp[1] - s * mt[1];
  } else if (vis.length === 1) {
    const [i, k] = vis[0]; s = 200; tx = k[0] - s * CFG.template[i][0]; ty = k[1] - s * CFG.template[i][1];
  }
  p.kp.forEach((k, i) => {
    if (k[2]) return;
    const old = prev && !prev.kp[i][2] ? prev.kp[i] : null;
    k[0] = old ? old[0] : tx + s * CFG.template[i][0];
    k[1] = old ? old[1] : ty + s * CFG.template[i][1];
  });
}
function mean(pts) {
  const m = [0, 0]; for (const q of pts) { m[0] += q[0]; m[1] += q[1]; }
  return [m[0] / pts.length, m[1] / pts.length];
}

// ---- geometry of people -------------------------------------------------------------------------
function bbox(p, all) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const k of p.kp) if (k[2] || all) { x0 = Math.min(x0, k[0]); y0 = Math.min(y0, k[1]); x1 = Math.max(x1, k[0]); y1 = Math.max(y1, k[1]); }
  return [x0, y0, x1, y1];
}
function centre(p) { const b = bbox(p); return [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2]; }
// x' = m @ x + t on every body joint (hidden ones too) and every labelled extension point.
function affine(p, m, t) {
  const f = (x, y) => [m[0] * x + m[1] * y + t[0], m[2] * x + m[3] * y + t[1]];
  for (const k of p.kp) { const [x, y] = f(k[0], k[1]); k[0] = x; k[1] = y; }
  for (const arr of Object.values(p.extras))
    for (let i = 0; i + 2 < arr.length; i += 3) if (arr[i + 2] > 0) { const [x, y] = f(arr[i], arr[i + 1]); arr[i] = x; arr[i + 1] = y; }
}
function about(m, c) { return [c[0] - (m[0] * c[0] + m[1] * c[1]), c[1] - (m[2] * c[0] + m[3] * c[1])]; }
function rotatePerson(p, rad, c) { const m = [Math.cos(rad), -Math.sin(rad), Math.sin(rad), Math.cos(rad)]; affine(p, m, about(m, c || centre(p))); }
function scalePerson(p, f, c) { const m = [f, 0, 0, f]; affine(p, m, about(m, c || centre(p))); }
function mirrorPerson(p) {
  const cx = centre(p)[0];
  affine(p, [-1, 0, 0, 1], [2 * cx, 0]);
  p.kp = CFG.mirror.map(i => p.kp[i]);
  p.extras = Object.fromEntries(Object.entries(p.extras).map(([k, v]) => [MIRROR_EXTRA[k] || k, v]));
}
// A standing person as tall as the people already there (or 70% of the canvas), put where the
// canvas has the most room: the candidate spot farthest from everyone's centre.
function standingPerson() {
  const heights = scene.people.map(p => { const b = bbox(p); return b[3] - b[1]; }).filter(v => v > 20);
  const height = Math.min(scene.h * 0.9, heights.length ? heights.reduce((a, b) => a + b) / heights.length : scene.h * 0.7);
  const centres = scene.people.map(centre);
  let cx = scene.w / 2, best = -1;
  for (let k = 0; k <= 12 && centres.length; k++) {
    const x = scene.w * (0.15 + 0.7 * k / 12);
    const room = Math.min(...centres.map(c => Math.abs(c[0] - x)));
    if (room > best + 1e-6) { best = room; cx = x; }
  }
  const cy = Math.min(scene.h - height * 0.55, Math.max(height * 0.5, scene.h * 0.52));
  return { kp: CFG.template.map(([x, y]) => [cx + x * height, cy + y * height, true]), subject: null, extras: {} };
}
function clampPoint(k) {
  k[0] = Math.min(2 * scene.w, Math.max(-scene.w, k[0]));
  k[1] = Math.min(2 * scene.h, Math.max(-scene.h, k[1]));
}

// ---- view: scene <-> screen ---------------------------------------------------------------------
function fitScale() { return Math.min(view.W / scene.w, view.H / scene.h) * 0.94; }
function scale() { return fitScale() * view.zoom; }
function origin() { const s = scale(); return [(view.W - scene.w * s) / 2 + view.panX, (view.H - scene.h * s) / 2 + view.panY]; }
function toScreen(x, y) { const s = scale(), o = origin(); return [o[0] + x * s, o[1] + y * s]; }
function toScene(sx, sy) { const s = scale(), o = origin(); return [(sx - o[0]) / s, (sy - o[1]) / s]; }
function zoomAt(factor, sx, sy) {
  const before = toScene(sx, sy);
  view.zoom = Math.min(8, Math.max(0.25, view.zoom * factor));
  const s = scale();
  view.panX = sx - before[0] * s - (view.W - scene.w * s) / 2;
  view.panY = sy - before[1] * s - (view.H - scene.h * s) / 2;
  requestDraw(); updateButtons();
}
function resetView() { view.zoom = 1; view.panX = 0; view.panY = 0; requestDraw(); updateButtons(); }

function resize() {
  const width = stage.clientWidth;
  if (!width) return;
  const maxH = Math.max(280, Math.min(window.innerHeight * 0.72, 760));
  const height = Math.round(Math.min(maxH, Math.max(260, width * scene.h / scene.w)));
  if (width === view.W && height === view.H) return;
  view.W = width; view.H = height;
  const dpr = window.devicePixelRatio || 1;
  canvas.style.height = height + "px";
  canvas.width = Math.round(width * dpr); canvas.height = Math.round(height * dpr);
  requestDraw();
}

// ---- drawing ----------------------------------------------------------------------------------
function rgb(c, f = 1) { return `rgb(${Math.round(c[0] * f)},${Math.round(c[1] * f)},${Math.round(c[2] * f)})`; }
function requestDraw() {
  if (frameQueued) return;
  frameQueued = true;
  requestAnimationFrame(() => { frameQueued = false; draw(); });
}
function draw() {
  const t0 = performance.now();
  const dpr = canvas.width / Math.max(1, view.W);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = "#2a2c33"; ctx.fillRect(0, 0, view.W, view.H);
  const s = scale(), [ox, oy] = origin();
  ctx.fillStyle = "#000"; ctx.fillRect(ox, oy, scene.w * s, scene.h * s);
  if (bg.img && bg.img.naturalWidth) {
    const k = Math.min(scene.w / bg.img.naturalWidth, scene.h / bg.img.naturalHeight);
    const iw = bg.img.naturalWidth * k * s, ih = bg.img.naturalHeight * k * s;
    ctx.globalAlpha = bg.opacity;
    ctx.drawImage(bg.img, ox + (scene.w * s - iw) / 2, oy + (scene.h * s - ih) / 2, iw, ih);
    ctx.globalAlpha = 1;
  }
  ctx.strokeStyle = "rgba(255,255,255,0.25)"; ctx.lineWidth = 1; ctx.strokeRect(ox + 0.5, oy + 0.5, scene.w * s - 1, scene.h * s - 1);
  const unit = Math.max(scene.w, scene.h) / 512 * s;           // controlnet's sizes, on screen
  const limbW = Math.max(3, 8 * unit), jointR = Math.max(3.5, 4 * unit);
  ctx.lineCap = "round";
  scene.people.forEach(p => {                                   // subject halos under everything
    if (p.subject === null) return;
    ctx.strokeStyle = subjectColor(p.subject);
    ctx.globalAlpha = 0.55; ctx.lineWidth = limbW + Math.max(8, 10 * unit);
    strokeLimbs(p);
    ctx.globalAlpha = 1;
  });
  scene.people.forEach((p, n) => {
    ctx.lineWidth = limbW;
    CFG.limbs.forEach(([a, b], i) => {
      if (!p.kp[a][2] || !p.kp[b][2]) return;
      const A = toScreen(p.kp[a][0], p.kp[a][1]), B = toScreen(p.kp[b][0], p.kp[b][1]);
      ctx.strokeStyle = rgb(CFG.colors[i], 0.6);
      ctx.beginPath(); ctx.moveTo(A[0], A[1]); ctx.lineTo(B[0], B[1]); ctx.stroke();
    });
    p.kp.forEach((k, j) => {
      const [x, y] = toScreen(k[0], k[1]);
      if (!k[2]) {
        if (n !== sel.p) return;                                // ghosts of the selected person only
        ctx.setLineDash([3, 3]); ctx.strokeStyle = "rgba(255,255,255,0.8)"; ctx.lineWidth = 1.5;
        ctx.beginPath(); ctx.arc(x, y, jointR + 1, 0, 2 * Math.PI); ctx.stroke(); ctx.setLineDash([]);
      } else {
        ctx.fillStyle = rgb(CFG.colors[j]);
        ctx.beginPath(); ctx.arc(x, y, jointR, 0, 2 * Math.PI); ctx.fill();
      }
      if (n === sel.p && j === sel.j) {
        ctx.strokeStyle = "#fff"; ctx.lineWidth = 2;
        ctx.beginPath(); ctx.arc(x, y, jointR + 5, 0, 2 * Math.PI); ctx.stroke();
      }
    });
    badge(p, n);
  });
  if (sel.p >= 0 && scene.people[sel.p]) drawHandles(scene.people[sel.p]);
  const dt = performance.now() - t0;
  drawTimes.push(dt); if (drawTimes.length > 600) drawTimes.shift();
}
function strokeLimbs(p) {
  ctx.beginPath();
  for (const [a, b] of CFG.limbs) {
    if (!p.kp[a][2] || !p.kp[b][2]) continue;
    const A = toScreen(p.kp[a][0], p.kp[a][1]), B = toScreen(p.kp[b][0], p.kp[b][1]);
    ctx.moveTo(A[0], A[1]); ctx.lineTo(B[0], B[1]);
  }
  ctx.stroke();
}
function badge(p, n) {
  const b = bbox(p);
  if (!isFinite(b[0])) return;
  const [x, y] = toScreen((b[0] + b[2]) / 2, b[1]);
  const name = p.subject === null ? "" : (subjectNames[p.subject] || `S${p.subject + 1}`).slice(0, 16);
  const text = p.subject === null ? `P${n + 1}` : `P${n + 1} · ${name}`;
  ctx.font = "600 11px system-ui, sans-serif";
  const w = ctx.measureText(text).width + 10;
  const fill = p.subject === null ? "rgba(90,94,110,0.92)" : subjectColor(p.subject);
  ctx.fillStyle = fill; roundRect(x - w / 2, y - 30, w, 17, 8); ctx.fill();
  ctx.fillStyle = p.subject === null || luminance(fill) < 0.5 ? "#fff" : "#111"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
  ctx.fillText(text, x, y - 21.5);
}
function luminance(css) {
  const m = /^#?([0-9a-f]{6})$/i.exec(css.trim());
  if (!m) return 1;
  const v = parseInt(m[1], 16);
  return (0.299 * (v >> 16) + 0.587 * ((v >> 8) & 255) + 0.114 * (v & 255)) / 255;
}
function roundRect(x, y, w, h, r) {
  ctx.beginPath(); ctx.moveTo(x + r, y); ctx.arcTo(x + w, y, x + w, y + h, r); ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r); ctx.arcTo(x, y, x + w, y, r); ctx.closePath();
}
// Selection box with four scale corners and a rotation knob above it (screen coordinates).
function handles(p) {
  const b = bbox(p), pad = 14;
  const [x0, y0] = toScreen(b[0], b[1]), [x1, y1] = toScreen(b[2], b[3]);
  const box = [x0 - pad, y0 - pad, x1 + pad, y1 + pad];
  return { box, corners: [[box[0], box[1]], [box[2], box[1]], [box[0], box[3]], [box[2], box[3]]],
    rotate: [box[2] + 20, box[1] - 20] };
}
function drawHandles(p) {
  const h = handles(p), [x0, y0, x1, y1] = h.box;
  ctx.setLineDash([5, 4]); ctx.strokeStyle = "rgba(255,255,255,0.75)"; ctx.lineWidth = 1;
  ctx.strokeRect(x0, y0, x1 - x0, y1 - y0); ctx.setLineDash([]);
  ctx.beginPath(); ctx.moveTo(x1, y0); ctx.lineTo(h.rotate[0], h.rotate[1]); ctx.stroke();
  ctx.fillStyle = "#fff"; ctx.strokeStyle = "#7048e8"; ctx.lineWidth = 2;
  for (const [x, y] of h.corners) { ctx.fillRect(x - 5, y - 5, 10, 10); ctx.strokeRect(x - 5, y - 5, 10, 10); }
  ctx.beginPath(); ctx.arc(h.rotate[0], h.rotate[1], 7, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
}

// ---- hit testing ------------------------------------------------------------------------------
function hit(sx, sy, touch) {
  const tol = touch ? 22 : 11;
  const p = scene.people[sel.p];
  if (p) {
    const h = handles(p);
    if (Math.hypot(sx - h.rotate[0], sy - h.rotate[1]) <= tol) return { kind: "rotate", p: sel.p };
    for (const c of h.corners) if (Math.hypot(sx - c[0], sy - c[1]) <= tol) return { kind: "scale", p: sel.p };
  }
  let best = null, bestD = tol;
  const order = scene.people.map((_, i) => i).reverse();
  if (sel.p >= 0) { order.splice(order.indexOf(sel.p), 1); order.unshift(sel.p); }
  for (const i of order) scene.people[i].kp.forEach((k, j) => {
    if (!k[2] && i !== sel.p) return;
    const [x, y] = toScreen(k[0], k[1]), d = Math.hypot(sx - x, sy - y);
    if (d < bestD - (i === sel.p ? 0 : 2)) { bestD = d; best = { kind: "joint", p: i, j }; }
  });
  if (best) return best;
  for (const i of order) {
    const q = scene.people[i];
    for (const [a, b] of CFG.limbs) {
      if (!q.kp[a][2] || !q.kp[b][2]) continue;
      const A = toScreen(q.kp[a][0], q.kp[a][1]), B = toScreen(q.kp[b][0], q.kp[b][1]);
      if (segDist(sx, sy, A, B) <= tol) return { kind: "move", p: i };
    }
  }
  if (p) {
    const [x0, y0, x1, y1] = handles(p).box;
    if (sx >= x0 && sx <= x1 && sy >= y0 && sy <= y1) return { kind: "move", p: sel.p };
  }
  return { kind: "pan" };
}
function segDist(px, py, A, B) {
  const dx = B[0] - A[0], dy = B[1] - A[1], L = dx * dx + dy * dy;
  const t = L ? Math.max(0, Math.min(1, ((px - A[0]) * dx + (py - A[1]) * dy) / L)) : 0;
  return Math.hypot(px - A[0] - t * dx, py - A[1] - t * dy);
}

// ---- pointer gestures ---------------------------------------------------------------------------
function local(e) { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
canvas.addEventListener("pointerdown", e => {
  if (e.button !== undefined && e.button > 1) return;
  stage.focus({ preventScroll: true });
  try { canvas.setPointerCapture(e.pointerId); } catch (err) { /* synthetic pointers have no capture */ }
  pointers.set(e.pointerId, local(e));
  if (pointers.size === 2) { finishGesture(); startPinch(); return; }
  if (pointers.size > 2) return;
  const [sx, sy] = local(e);
  let h = e.button === 1 || spaceDown ? { kind: "pan" } : hit(sx, sy, e.pointerType === "touch");
  if (h.kind === "move" && e.shiftKey) h.kind = "rotate";
  else if (h.kind === "move" && e.altKey) h.kind = "scale";
  if (h.kind !== "pan") select(h.p, h.kind === "joint" ? h.j : (h.p === sel.p && h.kind !== "move" ? sel.j : -1));
  else if (e.button !== 1 && !spaceDown) select(-1, -1);
  const person = h.p !== undefined ? scene.people[h.p] : null;
  drag = { ...h, before: clone(scene), start: [sx, sy], startScene: toScene(sx, sy), moved: false,
    orig: person ? clone({ w: 0, h: 0, people: [person] }).people[0] : null,
    c: person ? centre(person) : null, pan: [view.panX, view.panY] };
  e.preventDefault();
});
canvas.addEventListener("pointermove", e => {
  if (!pointers.has(e.pointerId)) { hover(e); return; }
  pointers.set(e.pointerId, local(e));
  if (drag && drag.kind === "pinch") { movePinch(); return; }
  if (!drag) return;
  const [sx, sy] = local(e);
  if (!drag.moved && Math.hypot(sx - drag.start[0], sy - drag.start[1]) < 2) return;
  drag.moved = true;
  const [x, y] = toScene(sx, sy), [x0, y0] = drag.startScene;
  const p = scene.people[drag.p];
  if (drag.kind === "pan") { view.panX = drag.pan[0] + sx - drag.start[0]; view.panY = drag.pan[1] + sy - drag.start[1]; }
  else if (drag.kind === "joint") { p.kp[drag.j][0] = drag.orig.kp[drag.j][0] + x - x0; p.kp[drag.j][1] = drag.orig.kp[drag.j][1] + y - y0; clampPoint(p.kp[drag.j]); }
  else {
    restore(drag.p, drag.orig);
    const q = scene.people[drag.p], c = drag.c;
    if (drag.kind === "move") affine(q, [1, 0, 0, 1], [x - x0, y - y0]);
    else if (drag.kind === "rotate") rotatePerson(q, Math.atan2(y - c[1], x - c[0]) - Math.atan2(y0 - c[1], x0 - c[0]), c);
    else if (drag.kind === "scale") {
      const f = Math.hypot(x - c[0], y - c[1]) / Math.max(1e-6, Math.hypot(x0 - c[0], y0 - c[1]));
      scalePerson(q, Math.min(8, Math.max(0.1, f)), c);
    }
  }
  requestDraw();
});
function endPointer(e) {
  pointers.delete(e.pointerId);
  if (drag && drag.kind === "pinch") { if (pointers.size < 2) drag = null; return; }
  finishGesture();
}
canvas.addEventListener("pointerup", endPointer);
canvas.addEventListener("pointercancel", endPointer);
canvas.addEventListener("lostpointercapture", e => { if (pointers.has(e.pointerId)) endPointer(e); });
function finishGesture() {
  const d = drag; drag = null;
  if (!d || !d.moved || d.kind === "pan" || d.kind === "pinch") { requestDraw(); return; }
  record(d.before);
}
// After an edit: remember the state before it (if anything changed, hidden joints' places
// included) and commit when the OpenPose value itself changed.
function record(before) {
  if (JSON.stringify(before) === JSON.stringify(scene)) { requestDraw(); return; }
  pushHistory(before);
  if (signature(before) !== signature(scene)) commit(); else { updateButtons(); describe(); requestDraw(); }
}
function restore(i, person) {
  scene.people[i] = { kp: person.kp.map(k => k.slice()), subject: person.subject,
    extras: Object.fromEntries(Object.entries(person.extras).map(([k, v]) => [k, v.slice()])) };
}
function startPinch() {
  const [a, b] = [...pointers.values()];
  drag = { kind: "pinch", dist: Math.hypot(a[0] - b[0], a[1] - b[1]), mid: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2] };
}
function movePinch() {
  const [a, b] = [...pointers.values()];
  const dist = Math.hypot(a[0] - b[0], a[1] - b[1]), mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
  view.panX += mid[0] - drag.mid[0]; view.panY += mid[1] - drag.mid[1];
  if (drag.dist > 0) zoomAt(dist / drag.dist, mid[0], mid[1]);
  drag.dist = dist; drag.mid = mid; requestDraw();
}
function hover(e) {
  const [sx, sy] = local(e), h = hit(sx, sy, e.pointerType === "touch");
  canvas.style.cursor = spaceDown ? "grab" : { joint: "pointer", move: "move", rotate: "alias", scale: "nwse-resize", pan: "default" }[h.kind];
}
canvas.addEventListener("wheel", e => {
  if (!(e.ctrlKey || e.metaKey)) return;        // plain wheel scrolls the page; ctrl/pinch zooms
  e.preventDefault();
  const [sx, sy] = local(e); zoomAt(Math.exp(-e.deltaY * 0.0025), sx, sy);
}, { passive: false });

// ---- edits ------------------------------------------------------------------------------------
function select(p, j) {
  sel = { p: p >= 0 && p < scene.people.length ? p : -1, j: -1 };
  if (sel.p >= 0 && j >= 0 && j < N) sel.j = j;
  updateButtons(); describe(); requestDraw();
}
function pushHistory(before) {
  past.push(before); if (past.length > HISTORY_LIMIT) past.shift();
  future.length = 0;
}
// One user edit: snapshot, change, record, commit.
function edit(fn) {
  const before = clone(scene);
  if (fn() === false) return;
  record(before); select(sel.p, sel.j);
}
function commit() {
  const value = toOpenPose(scene);
  lastSignature = JSON.stringify(value);
  props.value = value;
  trigger("input");
  updateButtons(); describe(); requestDraw();
}
function undo() {
  if (!past.length) return say("Nothing to undo.");
  future.push(clone(scene)); scene = past.pop(); afterJump(); commit();
}
function redo() {
  if (!future.length) return say("Nothing to redo.");
  past.push(clone(scene)); scene = future.pop(); afterJump(); commit();
}
function afterJump() { if (sel.p >= scene.people.length) sel = { p: scene.people.length - 1, j: -1 }; resize(); }
function needPerson() {
  if (sel.p < 0) { say("Select a person first: click a limb or a joint.", true); return false; }
  return true;
}
const actions = {
  add() {
    if (scene.people.length >= CFG.max_people) return say(`The canvas holds at most ${CFG.max_people} people.`, true);
    edit(() => { scene.people.push(standingPerson()); sel = { p: scene.people.length - 1, j: -1 }; });
  },
  duplicate() {
    if (!needPerson()) return;
    if (scene.people.length >= CFG.max_people) return say(`The canvas holds at most ${CFG.max_people} people.`, true);
    edit(() => {
      const twin = clone({ w: 0, h: 0, people: [scene.people[sel.p]] }).people[0];
      // Beside the original, on whichever side has room.
      const b = bbox(twin), step = Math.max(24, (b[2] - b[0]) * 1.15);
      affine(twin, [1, 0, 0, 1], [b[2] + step <= scene.w || b[0] - step < 0 ? step : -step, 0]);
      twin.subject = null; scene.people.push(twin); sel = { p: scene.people.length - 1, j: -1 };
    });
  },
  remove() {
    if (!needPerson()) return;
    edit(() => { scene.people.splice(sel.p, 1); sel = { p: Math.min(sel.p, scene.people.length - 1), j: -1 }; });
  },
  mirror() { if (needPerson()) edit(() => { mirrorPerson(scene.people[sel.p]); sel.j = sel.j >= 0 ? CFG.mirror[sel.j] : -1; }); },
  toggleJoint() {
    if (!needPerson()) return;
    if (sel.j < 0) return say("Select a joint first (click it), then hide or show it.", true);
    const p = scene.people[sel.p], k = p.kp[sel.j];
    if (k[2] && p.kp.filter(q => q[2]).length === 1) return say("A person needs one visible joint; delete the person instead.", true);
    edit(() => { k[2] = !k[2]; });
  },
  rotateLeft() { if (needPerson()) edit(() => rotatePerson(scene.people[sel.p], -Math.PI / 12)); },
  rotateRight() { if (needPerson()) edit(() => rotatePerson(scene.people[sel.p], Math.PI / 12)); },
  shrink() { if (needPerson()) edit(() => scalePerson(scene.people[sel.p], 1 / 1.1)); },
  grow() { if (needPerson()) edit(() => scalePerson(scene.people[sel.p], 1.1)); },
  undo, redo,
  zoomIn() { zoomAt(1.25, view.W / 2, view.H / 2); },
  zoomOut() { zoomAt(0.8, view.W / 2, view.H / 2); },
  fit: resetView,
  photo() { photoInput.click(); },
  clearPhoto() { if (bg.url) URL.revokeObjectURL(bg.url); bg.img = null; bg.url = null; updateButtons(); requestDraw(); say("Background photo removed."); },
  importJSON() { jsonInput.click(); },
  exportJSON() { download(new Blob([JSON.stringify(toOpenPose(scene), null, 1)], { type: "application/json" }), "pose.json"); },
  exportPNG() { poseMap().toBlob(b => download(b, "pose_map.png"), "image/png"); },
};
function setSize(w, h) {
  if (w === scene.w && h === scene.h) return;
  edit(() => {                          // aspect-fit the people, as pose_db.transforms.fit_scene
    const f = Math.min(w / scene.w, h / scene.h), ox = (w - f * scene.w) / 2, oy = (h - f * scene.h) / 2;
    for (const p of scene.people) affine(p, [f, 0, 0, f], [ox, oy]);
    scene.w = w; scene.h = h;
  });
  resetView(); resize();
}
function nudge(dx, dy) {
  if (!needPerson()) return;
  edit(() => {
    const p = scene.people[sel.p];
    if (sel.j >= 0) { p.kp[sel.j][0] += dx; p.kp[sel.j][1] += dy; clampPoint(p.kp[sel.j]); }
    else affine(p, [1, 0, 0, 1], [dx, dy]);
  });
}

// The pose map as controlnet_aux's draw_bodypose draws it (pose_db.render.render_pose_map):
// limbs are filled ellipses at 0.6 brightness, joints filled circles, sized for 512 px.
function poseMap() {
  const off = document.createElement("canvas"); off.width = scene.w; off.height = scene.h;
  const c = off.getContext("2d"), unit = Math.max(scene.w, scene.h) / 512;
  const half = Math.max(1, Math.round(4 * unit)), radius = Math.max(1, Math.round(4 * unit));
  c.fillStyle = "#000"; c.fillRect(0, 0, scene.w, scene.h);
  for (const p of scene.people) {
    CFG.limbs.forEach(([a, b], i) => {
      if (!p.kp[a][2] || !p.kp[b][2]) return;
      const [xa, ya] = p.kp[a], [xb, yb] = p.kp[b];
      c.fillStyle = `rgb(${CFG.colors[i].map(v => Math.floor(v * 0.6)).join(",")})`;
      c.beginPath();
      c.ellipse(Math.trunc((xa + xb) / 2), Math.trunc((ya + yb) / 2), Math.max(0.5, Math.trunc(Math.hypot(xa - xb, ya - yb) / 2)),
        half, Math.atan2(ya - yb, xa - xb), 0, 2 * Math.PI);
      c.fill();
    });
    p.kp.forEach((k, j) => {
      if (!k[2]) return;
      c.fillStyle = rgb(CFG.colors[j]); c.beginPath(); c.arc(Math.trunc(k[0]), Math.trunc(k[1]), radius, 0, 2 * Math.PI); c.fill();
    });
  }
  return off;
}
function download(blob, name) {
  const a = document.createElement("a"); a.href = URL.createObjectURL(blob); a.download = name;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 4000);
  say(`Saved ${name}.`);
}

// ---- toolbar ----------------------------------------------------------------------------------
const ICONS = {
  add: "M12 5v14M5 12h14", duplicate: "M9 9h11v11H9zM5 15V4h11", remove: "M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13",
  mirror: "M12 3v18M9 7 3 17h6zM15 7l6 10h-6z", toggleJoint: "M2 12s4-7 10-7 10 7 10 7-4 7-10 7S2 12 2 12zM12 9a3 3 0 1 0 .01 0",
  rotateLeft: "M4 4v6h6M5 14a8 8 0 1 0 1-7l-2 3", rotateRight: "M20 4v6h-6M19 14a8 8 0 1 1-1-7l2 3",
  shrink: "M4 14h6v6M20 10h-6V4M14 10l7-7M3 21l7-7", grow: "M15 3h6v6M9 21H3v-6M21 3l-7 7M3 21l7-7",
  undo: "M9 14 4 9l5-5M4 9h11a5 5 0 0 1 0 10h-4", redo: "M15 14l5-5-5-5M20 9H9a5 5 0 0 0 0 10h4",
  zoomOut: "M11 4a7 7 0 1 0 .01 0M21 21l-5-5M8 11h6", zoomIn: "M11 4a7 7 0 1 0 .01 0M21 21l-5-5M8 11h6M11 8v6",
  fit: "M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5", photo: "M3 5h18v14H3zM3 16l5-5 4 4 3-3 6 6",
  clearPhoto: "M6 6l12 12M18 6 6 18", importJSON: "M12 3v12M7 10l5 5 5-5M4 21h16", exportJSON: "M12 15V3M7 8l5-5 5 5M4 21h16",
  exportPNG: "M12 15V3M7 8l5-5 5 5M4 21h16",
};
const BUTTONS = [
  ["person", [["add", "Add person", "Add a standing person (N)", "Person"], ["duplicate", "Duplicate person", "Duplicate the selected person (Ctrl+D)"],
    ["remove", "Delete person", "Delete the selected person (Delete)"], ["mirror", "Mirror person", "Mirror the selected person, swapping left and right (M)"],
    ["toggleJoint", "Hide or show joint", "Hide or show the selected joint (H)"]]],
  ["transform", [["rotateLeft", "Rotate left", "Rotate the person 15° left (Shift+R; Shift+drag or the round handle rotates freely)"],
    ["rotateRight", "Rotate right", "Rotate the person 15° right (R)"],
    ["shrink", "Make smaller", "Scale the person down ([; Alt+drag or the corner handles scale freely)"], ["grow", "Make larger", "Scale the person up (])"]]],
  ["history", [["undo", "Undo", "Undo (Ctrl+Z)"], ["redo", "Redo", "Redo (Ctrl+Shift+Z or Ctrl+Y)"]]],
  ["view", [["zoomOut", "Zoom out", "Zoom out (-)"], ["fit", "Fit canvas", "Fit the canvas (0)"], ["zoomIn", "Zoom in", "Zoom in (+; Ctrl+wheel or pinch)"]]],
  ["size", []],
  ["photo", [["photo", "Background photo", "Load a photo to trace over (stays in your browser)", "Photo"], ["clearPhoto", "Remove background photo", "Remove the background photo"]]],
  ["file", [["importJSON", "Import OpenPose JSON", "Import OpenPose JSON", "Import"], ["exportJSON", "Export OpenPose JSON", "Download the pose as OpenPose JSON", "JSON"],
    ["exportPNG", "Export pose map PNG", "Download the pose map PNG (ControlNet style)", "PNG"]]],
];
const buttons = {};
let sizeSelect, opacityInput;
for (const [group, items] of BUTTONS) {
  const g = document.createElement("div"); g.className = `pe-group pe-g-${group}`; g.setAttribute("role", "group");
  for (const [name, label, title, text] of items) {
    const b = document.createElement("button");
    b.type = "button"; b.className = "pe-btn"; b.dataset.action = name;
    b.setAttribute("aria-label", label); b.title = title;
    b.innerHTML = `<svg viewBox="0 0 24 24" aria-hidden="true"><path d="${ICONS[name]}"/></svg>` + (text ? `<span>${text}</span>` : "");
    b.addEventListener("click", () => { actions[name](); if (!["photo", "importJSON"].includes(name)) stage.focus({ preventScroll: true }); });
    g.appendChild(b); buttons[name] = b;
  }
  if (group === "size") {
    sizeSelect = document.createElement("select"); sizeSelect.className = "pe-size";
    sizeSelect.setAttribute("aria-label", "Canvas size and aspect"); sizeSelect.title = "Canvas size and aspect";
    sizeSelect.addEventListener("change", () => { const [w, h] = sizeSelect.value.split("x").map(Number); setSize(w, h); });
    g.appendChild(sizeSelect);
  }
  if (group === "photo") {
    opacityInput = document.createElement("input");
    Object.assign(opacityInput, { type: "range", min: "0", max: "100", value: "50", className: "pe-opacity", title: "Photo opacity" });
    opacityInput.setAttribute("aria-label", "Background photo opacity");
    opacityInput.addEventListener("input", () => { bg.opacity = Number(opacityInput.value) / 100; requestDraw(); });
    g.insertBefore(opacityInput, buttons.clearPhoto);
  }
  toolbar.appendChild(g);
}
function fileInput(accept, onFile) {
  const input = document.createElement("input"); input.type = "file"; input.accept = accept; input.hidden = true;
  input.addEventListener("change", () => { const f = input.files && input.files[0]; input.value = ""; if (f) onFile(f); });
  root.appendChild(input); return input;
}
const jsonInput = fileInput(".json,application/json", f => {
  if (f.size > 5e6) return say("That file is too large to be OpenPose JSON.", true);
  f.text().then(text => importText(text, f.name));
});
const photoInput = fileInput("image/*", f => {
  const url = URL.createObjectURL(f), img = new Image();
  img.onload = () => {
    if (bg.url) URL.revokeObjectURL(bg.url);
    bg.img = img; bg.url = url; updateButtons();
    if (!scene.people.length) {         // an empty canvas takes the photo's aspect
      const long = Math.max(scene.w, scene.h), k = long / Math.max(img.naturalWidth, img.naturalHeight);
      setSize(Math.max(CFG.canvas_min, Math.round(img.naturalWidth * k / 16) * 16), Math.max(CFG.canvas_min, Math.round(img.naturalHeight * k / 16) * 16));
    }
    say("Photo loaded: trace over it; adjust its opacity with the slider."); requestDraw();
  };
  img.onerror = () => { URL.revokeObjectURL(url); say("That file is not an image this browser can show.", true); };
  img.src = url;
});
function importText(text, name) {
  let next;
  try { next = fromOpenPose(text, null); } catch (err) { return say(`Cannot import ${name || "that JSON"}: ${err.message}.`, true); }
  if (!next) return say("That file is empty.", true);
  edit(() => { scene = next; sel = { p: next.people.length ? 0 : -1, j: -1 }; });
  resetView(); resize(); say(`Imported ${next.people.length} people from ${name || "JSON"}.`);
}
function updateButtons() {
  const has = sel.p >= 0;
  for (const n of ["duplicate", "remove", "mirror", "toggleJoint", "rotateLeft", "rotateRight", "shrink", "grow"]) buttons[n].disabled = !has;
  buttons.add.disabled = scene.people.length >= CFG.max_people;
  buttons.undo.disabled = !past.length; buttons.redo.disabled = !future.length;
  buttons.clearPhoto.disabled = !bg.img; opacityInput.disabled = !bg.img;
  buttons.toggleJoint.setAttribute("aria-pressed", String(has && sel.j >= 0 && !scene.people[sel.p].kp[sel.j][2]));
  const key = `${scene.w}x${scene.h}`;
  const opts = CFG.sizes.map(s => [`${s.width}x${s.height}`, `${s.label} · ${s.width}×${s.height}`]);
  if (!opts.some(([v]) => v === key)) opts.unshift([key, `Custom · ${scene.w}×${scene.h}`]);
  if (sizeSelect.dataset.key !== JSON.stringify(opts)) {
    sizeSelect.innerHTML = ""; for (const [v, t] of opts) sizeSelect.add(new Option(t, v));
    sizeSelect.dataset.key = JSON.stringify(opts);
  }
  sizeSelect.value = key;
  root.querySelector(".pe-empty").hidden = scene.people.length > 0;
}
let sayTimer = null;
function say(text, error) {
  statusLine.textContent = text; statusLine.classList.toggle("pe-error", !!error);
  clearTimeout(sayTimer); sayTimer = setTimeout(describe, error ? 6000 : 3000);
}
function describe() {
  statusLine.classList.remove("pe-error");
  const n = scene.people.length;
  if (!n) { statusLine.textContent = `${scene.w}×${scene.h} canvas, empty.`; return; }
  let text = `${scene.w}×${scene.h} · ${n} ${n === 1 ? "person" : "people"}`;
  if (sel.p >= 0) {
    const p = scene.people[sel.p];
    text += ` · Person ${sel.p + 1}${p.subject !== null ? ` (subject ${p.subject + 1})` : ""}`;
    if (sel.j >= 0) text += ` · ${CFG.names[sel.j].replace("_", " ")}${p.kp[sel.j][2] ? "" : " (hidden)"}`;
    else text += " · drag to move, Shift+drag rotates, Alt+drag scales";
  } else text += " · click a joint or limb to select";
  statusLine.textContent = text;
}

// ---- keyboard (only while the editor has focus) ----------------------------------------------
root.addEventListener("keydown", e => {
  const tag = e.target.tagName;
  if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
  const mod = e.ctrlKey || e.metaKey, k = e.key.toLowerCase();
  let done = true;
  if (mod && k === "z" && !e.shiftKey) undo();
  else if (mod && (k === "y" || (k === "z" && e.shiftKey))) redo();
  else if (mod && k === "d") actions.duplicate();
  else if (mod) done = false;
  else if (e.key === "Delete" || e.key === "Backspace") actions.remove();
  else if (k === "m") actions.mirror();
  else if (k === "h") actions.toggleJoint();
  else if (k === "r") (e.shiftKey ? actions.rotateLeft : actions.rotateRight)();
  else if (k === "]") actions.grow();
  else if (k === "[") actions.shrink();
  else if (k === "n") actions.add();
  else if (k === "+" || k === "=") actions.zoomIn();
  else if (k === "-") actions.zoomOut();
  else if (k === "0") actions.fit();
  else if (e.key === "Escape") select(-1, -1);
  else if (e.key === "Tab" && e.target === stage && scene.people.length && !(sel.p === (e.shiftKey ? 0 : scene.people.length - 1)))
    select(sel.p < 0 ? (e.shiftKey ? scene.people.length - 1 : 0) : sel.p + (e.shiftKey ? -1 : 1), -1);
  else if (e.key.startsWith("Arrow") && e.target === stage) {
    const step = e.shiftKey ? 10 : 1, d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
    nudge(d[0], d[1]);
  } else if (e.key === " " && e.target === stage) { spaceDown = true; canvas.style.cursor = "grab"; }
  else done = false;
  if (done) { e.preventDefault(); e.stopPropagation(); }
});
root.addEventListener("keyup", e => { if (e.key === " ") { spaceDown = false; canvas.style.cursor = ""; } });

// ---- value from Python ----------------------------------------------------------------------------
function load(value, fromServer) {
  drag = null;                          // the server's value wins over a gesture in flight
  let next;
  try { next = fromOpenPose(value, scene); } catch (err) { return say(`The pose could not be shown: ${err.message}.`, true); }
  if (!next) next = { w: scene.w, h: scene.h, people: [] };
  if (signature(next) === signature(scene)) return;
  const sameShape = next.people.length === scene.people.length && next.w === scene.w && next.h === scene.h;
  if (fromServer && (scene.people.length || past.length)) pushHistory(clone(scene));
  scene = next; lastSignature = signature(scene);
  if (!sameShape) { sel = { p: -1, j: -1 }; resetView(); }
  resize(); updateButtons(); describe(); requestDraw();
}
watch("value", () => {
  const v = props.value;
  if (v && typeof v === "object" && JSON.stringify(v) === lastSignature) return;
  load(v, true);
});

// Names and colours of the subjects (the Subjects panel), for the halos and badges. Empty or
// invalid entries keep the defaults.
function setSubjects(names, colors) {
  subjectNames = (names || []).map(n => (typeof n === "string" ? n.trim() : ""));
  (colors || []).forEach((c, k) => {
    if (typeof c === "string" && c.trim() && CSS.supports("color", c.trim()) && k < subjectColors.length) subjectColors[k] = c.trim();
  });
  requestDraw();
}

// A small API for tests and power users: element.poseEditor.
element.poseEditor = {
  getValue: () => toOpenPose(scene), setValue: v => { load(v, false); commit(); }, importText,
  select, actions, undo, redo, setSubjects, subjects: () => ({ names: subjectNames.slice(), colors: subjectColors.slice() }),
  poseMapDataURL: () => poseMap().toDataURL("image/png"),
  toScreen: (x, y) => { const r = canvas.getBoundingClientRect(), q = toScreen(x, y); return [r.left + q[0], r.top + q[1]]; },
  drawTimes, history: () => ({ past: past.length, future: future.length }), view,
};

stage.setAttribute("aria-label", `${CFG.label}: ${stage.getAttribute("aria-label")}`);
new ResizeObserver(resize).observe(stage);
try { const v = fromOpenPose(props.value, null); if (v) scene = v; } catch (err) { say(`The pose could not be shown: ${err.message}.`, true); }
lastSignature = signature(scene);
resize(); updateButtons(); describe(); requestDraw();
root.dataset.ready = "1";
