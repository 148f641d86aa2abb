// ---- model.js: the pose scene, OpenPose JSON in and out, history, person transforms ----------
// No DOM here. Functions take the skeleton config `cfg` (from Python: pose_db.scene.skeleton via
// props.editor_config) or the editor state `st` (see main.js) explicitly.
//
// A scene is {w, h, people: [{kp: [[x, y, visible(bool)] x 18], subject: int|null,
// extras: {key: [numbers]}}]}. Hidden joints keep their coordinates here, so "show" puts them
// back where they were. Hands are extras too: 21 x [x, y, c] under their OpenPose key
// (cfg.hands[i].key), c > 0 visible.

const HISTORY_LIMIT = 100;

function clonePerson(p) {
  return { kp: p.kp.map(k => k.slice()), subject: p.subject,
    extras: Object.fromEntries(Object.entries(p.extras).map(([k, v]) => [k, v.slice()])) };
}
function clone(s) { return { w: s.w, h: s.h, people: s.people.map(clonePerson) }; }
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
function fromOpenPose(cfg, data, previous) {
  const N = cfg.names.length;
  if (typeof data === "string") { data = data.trim(); if (!data) return null; data = JSON.parse(data); }
  if (data === null || data === undefined || data === "") return null;
  if (Array.isArray(data)) {
    if (data.length !== 1) throw new Error(`expected one OpenPose frame, got a list of ${data.length}`);
    data = data[0];
  }
  if (typeof data !== "object" || !Array.isArray(data.people)) throw new Error('OpenPose JSON needs a "people" list');
  if (data.people.length > cfg.max_people) throw new Error(`at most ${cfg.max_people} people fit on the canvas`);
  const raw = data.people.map((p, n) => {
    let vals = p && p.pose_keypoints_2d;
    if (!Array.isArray(vals) || vals.some(v => typeof v !== "number" || !isFinite(v)))
      throw new Error(`person ${n + 1}: pose_keypoints_2d must be a list of numbers`);
    if (vals.length === 3 * cfg.coco17.length) vals = coco17ToBody18(cfg, vals);
    else if (vals.length !== N * 3) throw new Error(`person ${n + 1}: pose_keypoints_2d needs ${N * 3} numbers (${N} x [x, y, c]), got ${vals.length}`);
    const kp = [];
    for (let i = 0; i < N; i++) kp.push([vals[3 * i], vals[3 * i + 1], vals[3 * i + 2] > 0]);
    if (!kp.some(k => k[2])) throw new Error(`person ${n + 1} has no visible keypoint`);
    const extras = {};
    for (const key of cfg.extra_keys) if (Array.isArray(p[key]) && p[key].length) extras[key] = p[key].slice();
    for (const { key } of cfg.hands) {
      const hand = extras[key];
      if (!hand) continue;
      if (hand.length !== 3 * cfg.hand_template.length || hand.some(v => typeof v !== "number" || !isFinite(v)))
        throw new Error(`person ${n + 1}: ${key} needs ${3 * cfg.hand_template.length} numbers (${cfg.hand_template.length} x [x, y, c])`);
      if (!hand.some((v, i) => i % 3 === 2 && v > 0)) delete extras[key];   // all zeros: no hand
    }
    const subject = Number.isInteger(p.subject) && p.subject >= 0 && p.subject < cfg.max_subjects ? p.subject : null;
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
  if (w < cfg.canvas_min || h < cfg.canvas_min || w > cfg.canvas_max || h > cfg.canvas_max)
    throw new Error(`the canvas must be ${cfg.canvas_min} to ${cfg.canvas_max} pixels a side, got ${w}x${h}`);
  const out = { w, h, people: raw };
  for (const [i, p] of out.people.entries()) {
    if (normalised) {
      for (const k of p.kp) if (k[2]) { k[0] *= w; k[1] *= h; }
      for (const { key } of cfg.hands) if (p.extras[key]) affine1(p.extras[key], [w, 0, 0, h], [0, 0]);
    }
    const prev = previous && previous.people[i];
    placeHidden(cfg, p, prev && prev.kp.length === N ? prev : null);
  }
  return out;
}

// COCO-17 slot k goes to BODY-18 index cfg.coco17[k]; the neck, which COCO lacks, is the mean
// of the shoulders when both are labelled (cfg.coco_neck = [neck, right shoulder, left shoulder]).
function coco17ToBody18(cfg, vals) {
  const out = new Array(cfg.names.length * 3).fill(0);
  cfg.coco17.forEach((i, k) => {
    if (vals[3 * k + 2] > 0) { out[3 * i] = vals[3 * k]; out[3 * i + 1] = vals[3 * k + 1]; out[3 * i + 2] = 1; }
  });
  const [neck, rs, ls] = cfg.coco_neck.map(i => 3 * i);
  if (out[rs + 2] && out[ls + 2]) { out[neck] = (out[rs] + out[ls]) / 2; out[neck + 1] = (out[rs + 1] + out[ls + 1]) / 2; out[neck + 2] = 1; }
  return out;
}

// Hidden joints arrive as [0, 0, 0]. Give them a plausible place (the previous one if the same
// joint was hidden here before, else the standing template fitted to the visible joints) so
// "show joint" brings them back near the body.
function placeHidden(cfg, p, prev) {
  const vis = p.kp.map((k, i) => [i, k]).filter(([, k]) => k[2]);
  let s = 1, tx = 0, ty = 0;
  if (vis.length >= 2) {
    const mt = mean(vis.map(([i]) => cfg.template[i])), mp = mean(vis.map(([, k]) => k));
    let num = 0, den = 0;
    for (const [i, k] of vis) {
      const ax = cfg.template[i][0] - mt[0], ay = cfg.template[i][1] - mt[1];
      num += ax * (k[0] - mp[0]) + ay * (k[1] - mp[1]); den += ax * ax + ay * ay;
    }
    s = den > 1e-9 && num > 0 ? num / den : 200;
    tx = mp[0] - s * mt[0]; ty = mp[1] - s * mt[1];
  } else if (vis.length === 1) {
    const [i, k] = vis[0]; s = 200; tx = k[0] - s * cfg.template[i][0]; ty = k[1] - s * cfg.template[i][1];
  }
  p.kp.forEach((k, i) => {
    if (k[2]) return;
    const old = prev && !prev.kp[i][2] ? prev.kp[i] : null;
    k[0] = old ? old[0] : tx + s * cfg.template[i][0];
    k[1] = old ? old[1] : ty + s * cfg.template[i][1];
  });
}
function mean(pts) {
  const m = [0, 0]; for (const q of pts) { m[0] += q[0]; m[1] += q[1]; }
  return [m[0] / pts.length, m[1] / pts.length];
}

// ---- geometry and transforms of people ----------------------------------------------------------
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
  for (const arr of Object.values(p.extras)) affine1(arr, m, t);
}
// The same on one flat [x, y, c, ...] list (a hand, the face), labelled points only.
function affine1(arr, m, t) {
  for (let i = 0; i + 2 < arr.length; i += 3) if (arr[i + 2] > 0) {
    const x = arr[i], y = arr[i + 1];
    arr[i] = m[0] * x + m[1] * y + t[0]; arr[i + 1] = m[2] * x + m[3] * y + t[1];
  }
}
// ---- hands ------------------------------------------------------------------------------------
// The hand (a cfg.hands entry) whose wrist is joint j, or null.
function handAt(cfg, j) { return cfg.hands.find(h => h.wrist === j) || null; }
// An open hand at `hand`'s wrist: cfg.hand_template turned along the forearm (elbow -> wrist;
// straight up without an elbow), 0.75 forearms long, the thumb on the side away from the neck.
function openHand(cfg, p, hand) {
  const W = p.kp[hand.wrist], E = p.kp[hand.elbow], neck = p.kp[cfg.coco_neck[0]];
  let dx = 0, dy = -1, len = 40;
  const fx = W[0] - E[0], fy = W[1] - E[1], fl = Math.hypot(fx, fy);
  if (E[2] && fl > 1) { dx = fx / fl; dy = fy / fl; len = Math.max(12, 0.75 * fl); }
  let nx = -dy, ny = dx;                                  // across the hand
  if (neck[2] && nx * (W[0] - neck[0]) + ny * (W[1] - neck[1]) < 0) { nx = -nx; ny = -ny; }
  return cfg.hand_template.flatMap(([tx, ty]) => [W[0] + len * (tx * nx - ty * dx), W[1] + len * (tx * ny - ty * dy), 1]);
}
// [x0, y0, x1, y1] around a hand's labelled points.
function handBox(arr) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i + 2 < arr.length; i += 3) if (arr[i + 2] > 0) {
    x0 = Math.min(x0, arr[i]); y0 = Math.min(y0, arr[i + 1]); x1 = Math.max(x1, arr[i]); y1 = Math.max(y1, arr[i + 1]);
  }
  return [x0, y0, x1, y1];
}
function about(m, c) { return [c[0] - (m[0] * c[0] + m[1] * c[1]), c[1] - (m[2] * c[0] + m[3] * c[1])]; }
function rotatePerson(p, rad, c) { const m = [Math.cos(rad), -Math.sin(rad), Math.sin(rad), Math.cos(rad)]; affine(p, m, about(m, c || centre(p))); }
function scalePerson(p, f, c) { const m = [f, 0, 0, f]; affine(p, m, about(m, c || centre(p))); }
// Reflect about the person's own centre and swap each left keypoint (and hand) with its twin.
function mirrorPerson(cfg, p) {
  const cx = centre(p)[0];
  affine(p, [-1, 0, 0, 1], [2 * cx, 0]);
  p.kp = cfg.mirror.map(i => p.kp[i]);
  p.extras = Object.fromEntries(Object.entries(p.extras).map(([k, v]) => [cfg.mirror_extras[k] || k, v]));
}
// A copy of `p` beside it, on whichever side of the canvas has room; assigned to no subject.
function duplicatePerson(scene, p) {
  const twin = clonePerson(p);
  const b = bbox(twin), step = Math.max(24, (b[2] - b[0]) * 1.15);
  affine(twin, [1, 0, 0, 1], [b[2] + step <= scene.w || b[0] - step < 0 ? step : -step, 0]);
  twin.subject = null;
  return twin;
}
// A standing person as tall as the people already there (or 70% of the canvas), put in the widest
// free gap between everyone's boxes; where no gap is wide enough (a crowded canvas) the newcomer
// is made smaller, down to half that height, before it is allowed to overlap the least.
function standingPerson(cfg, scene) {
  const boxes = scene.people.map(bbox);
  const heights = boxes.map(b => b[3] - b[1]).filter(v => v > 20);
  const tall = Math.min(scene.h * 0.9, heights.length ? heights.reduce((a, b) => a + b) / heights.length : scene.h * 0.7);
  const xs = cfg.template.map(([x]) => x), xmin = Math.min(...xs), xmax = Math.max(...xs);
  let pick = null;
  for (const height of [tall, tall * 0.85, tall * 0.7, tall * 0.6, tall * 0.5]) {
    const margin = Math.max(4, 0.08 * height), lo = margin - xmin * height, hi = scene.w - margin - xmax * height;
    for (let k = 0; k <= 48; k++) {
      const cx = lo + (hi - lo) * k / 48, left = cx + xmin * height, right = cx + xmax * height;
      // the smallest horizontal clearance to anyone (negative: overlapping by that much)
      const gap = boxes.length ? Math.min(...boxes.map(b => Math.max(b[0] - right, left - b[2]))) : Infinity;
      if (!pick || gap > pick.gap + 1e-6) pick = { gap, cx, height };
    }
    if (pick.gap >= margin) break;
  }
  const { cx, height } = pick;
  const cy = Math.min(scene.h - height * 0.55, Math.max(height * 0.5, scene.h * 0.52));
  return { kp: cfg.template.map(([x, y]) => [cx + x * height, cy + y * height, true]), subject: null, extras: {} };
}
// A new canvas size, the people aspect-fitted into it (as pose_db.scene.transforms.fit_scene).
function resizeScene(scene, w, h) {
  const f = Math.min(w / scene.w, h / scene.h), ox = (w - f * scene.w) / 2, oy = (h - f * scene.h) / 2;
  for (const p of scene.people) affine(p, [f, 0, 0, f], [ox, oy]);
  scene.w = w; scene.h = h;
}
function clampPoint(scene, k) {
  k[0] = Math.min(2 * scene.w, Math.max(-scene.w, k[0]));
  k[1] = Math.min(2 * scene.h, Math.max(-scene.h, k[1]));
}

// ---- history (st.past / st.future hold scene snapshots) ----------------------------------------
function pushHistory(st, before) {
  st.past.push(before); if (st.past.length > HISTORY_LIMIT) st.past.shift();
  st.future.length = 0;
}
// Undo (from = st.past, to = st.future) or redo (the other way round); false if nothing there.
function stepHistory(st, from, to) {
  if (!from.length) return false;
  to.push(clone(st.scene)); st.scene = from.pop();
  if (st.sel.p >= st.scene.people.length) st.sel = { p: st.scene.people.length - 1, j: -1 };
  return true;
}
