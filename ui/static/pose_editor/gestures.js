// ---- gestures.js: hit-testing and pointer gestures (mouse, pen, touch, pinch, wheel) -----------
// st.drag is the gesture in progress, st.pointers the active pointers (two make a pinch),
// st.spaceDown whether Space is held (Space+drag pans). A gesture edits st.scene live and is
// recorded (one history step, one commit) on pointer-up.

// What is under screen point (sx, sy): the selection's rotate knob or scale corners, a joint, a
// limb (moves its person), the selection box, else empty canvas (pans). The selected person wins.
function hit(st, sx, sy, touch) {
  const tol = touch ? 22 : 11, { scene, sel } = st;
  if (st.hand) return hitHand(st, sx, sy, touch ? 22 : 14);
  const p = scene.people[sel.p];
  if (p) {
    const h = handles(st, p);
    if (Math.hypot(sx - h.rotate[0], sy - h.rotate[1]) <= tol) return { kind: "rotate", p: sel.p };
    for (const c of h.corners) if (Math.hypot(sx - c[0], sy - c[1]) <= tol) return { kind: "scale", p: sel.p };
  }
  let best = null, bestD = tol;
  const order = scene.people.map((_, i) => i).reverse();
  if (sel.p >= 0) { order.splice(order.indexOf(sel.p), 1); order.unshift(sel.p); }
  for (const i of order) scene.people[i].kp.forEach((k, j) => {
    if (!k[2] && i !== sel.p) return;
    const [x, y] = toScreen(st, k[0], k[1]), d = Math.hypot(sx - x, sy - y);
    if (d < bestD - (i === sel.p ? 0 : 2)) { bestD = d; best = { kind: "joint", p: i, j }; }
  });
  if (best) return best;
  for (const i of order) {
    const q = scene.people[i];
    for (const [a, b] of st.cfg.limbs) {
      if (!q.kp[a][2] || !q.kp[b][2]) continue;
      const A = toScreen(st, q.kp[a][0], q.kp[a][1]), B = toScreen(st, q.kp[b][0], q.kp[b][1]);
      if (segDist(sx, sy, A, B) <= tol) return { kind: "move", p: i };
    }
  }
  if (p) {
    const [x0, y0, x1, y1] = handles(st, p).box;
    if (sx >= x0 && sx <= x1 && sy >= y0 && sy <= y1) return { kind: "move", p: sel.p };
  }
  return { kind: "pan" };
}
// In hand mode only the edited hand's labelled joints can be dragged; anywhere else pans.
function hitHand(st, sx, sy, tol) {
  const { p, key } = st.hand, arr = st.scene.people[p].extras[key];
  let best = null, bestD = tol;
  for (let i = 0; i < arr.length / 3; i++) {
    if (!(arr[3 * i + 2] > 0)) continue;
    const [x, y] = toScreen(st, arr[3 * i], arr[3 * i + 1]), d = Math.hypot(sx - x, sy - y);
    if (d < bestD) { bestD = d; best = { kind: "handJoint", p, i }; }
  }
  return best || { kind: "pan" };
}
function segDist(px, py, A, B) {
  const dx = B[0] - A[0], dy = B[1] - A[1], L = dx * dx + dy * dy;
  const t = L ? Math.max(0, Math.min(1, ((px - A[0]) * dx + (py - A[1]) * dy) / L)) : 0;
  return Math.hypot(px - A[0] - t * dx, py - A[1] - t * dy);
}

function localPoint(st, e) { const r = st.dom.canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }

function pointerDown(st, e) {
  const { canvas, stage } = st.dom;
  if (e.button !== undefined && e.button > 1) return;
  stage.focus({ preventScroll: true });
  try { canvas.setPointerCapture(e.pointerId); } catch (err) { /* synthetic pointers have no capture */ }
  st.pointers.set(e.pointerId, localPoint(st, e));
  if (st.pointers.size === 2) { finishGesture(st); startPinch(st); return; }
  if (st.pointers.size > 2) return;
  const [sx, sy] = localPoint(st, e);
  let h = e.button === 1 || st.spaceDown ? { kind: "pan" } : hit(st, sx, sy, e.pointerType === "touch");
  if (h.kind === "move" && e.shiftKey) h.kind = "rotate";
  else if (h.kind === "move" && e.altKey) h.kind = "scale";
  if (h.kind === "handJoint") { st.hand.i = h.i; refresh(st); }
  else if (h.kind !== "pan") select(st, h.p, h.kind === "joint" ? h.j : (h.p === st.sel.p && h.kind !== "move" ? st.sel.j : -1));
  else if (e.button !== 1 && !st.spaceDown && !st.hand) select(st, -1, -1);
  const person = h.p !== undefined ? st.scene.people[h.p] : null;
  st.drag = { ...h, before: clone(st.scene), start: [sx, sy], startScene: toScene(st, sx, sy), moved: false,
    orig: person ? clonePerson(person) : null,
    c: person ? centre(person) : null, pan: [st.view.panX, st.view.panY] };
  e.preventDefault();
}
function pointerMove(st, e) {
  if (!st.pointers.has(e.pointerId)) { hover(st, e); return; }
  st.pointers.set(e.pointerId, localPoint(st, e));
  const drag = st.drag;
  if (drag && drag.kind === "pinch") { movePinch(st); return; }
  if (!drag) return;
  const [sx, sy] = localPoint(st, e);
  if (!drag.moved && Math.hypot(sx - drag.start[0], sy - drag.start[1]) < 2) return;
  drag.moved = true;
  const [x, y] = toScene(st, sx, sy), [x0, y0] = drag.startScene;
  const p = st.scene.people[drag.p];
  if (drag.kind === "pan") { st.view.panX = drag.pan[0] + sx - drag.start[0]; st.view.panY = drag.pan[1] + sy - drag.start[1]; }
  else if (drag.kind === "joint") {
    p.kp[drag.j][0] = drag.orig.kp[drag.j][0] + x - x0; p.kp[drag.j][1] = drag.orig.kp[drag.j][1] + y - y0;
    clampPoint(st.scene, p.kp[drag.j]);
    const hand = handAt(st.cfg, drag.j);              // a wrist carries its hand along
    if (hand && drag.orig.extras[hand.key]) {
      const orig = drag.orig.extras[hand.key], arr = p.extras[hand.key] = orig.slice();
      affine1(arr, [1, 0, 0, 1], [p.kp[drag.j][0] - drag.orig.kp[drag.j][0], p.kp[drag.j][1] - drag.orig.kp[drag.j][1]]);
    }
  } else if (drag.kind === "handJoint") {
    const arr = p.extras[st.hand.key], orig = drag.orig.extras[st.hand.key], i = drag.i;
    const k = [orig[3 * i] + x - x0, orig[3 * i + 1] + y - y0];
    clampPoint(st.scene, k); arr[3 * i] = k[0]; arr[3 * i + 1] = k[1];
  } else {
    st.scene.people[drag.p] = clonePerson(drag.orig);     // each move starts again from the original
    const q = st.scene.people[drag.p], c = drag.c;
    if (drag.kind === "move") affine(q, [1, 0, 0, 1], [x - x0, y - y0]);
    else if (drag.kind === "rotate") rotatePerson(q, Math.atan2(y - c[1], x - c[0]) - Math.atan2(y0 - c[1], x0 - c[0]), c);
    else if (drag.kind === "scale") {
      const f = Math.hypot(x - c[0], y - c[1]) / Math.max(1e-6, Math.hypot(x0 - c[0], y0 - c[1]));
      scalePerson(q, Math.min(8, Math.max(0.1, f)), c);
    }
  }
  requestDraw(st);
}
function endPointer(st, e) {
  st.pointers.delete(e.pointerId);
  if (st.drag && st.drag.kind === "pinch") { if (st.pointers.size < 2) st.drag = null; return; }
  finishGesture(st);
}
function finishGesture(st) {
  const d = st.drag; st.drag = null;
  if (!d || !d.moved || d.kind === "pan" || d.kind === "pinch") { requestDraw(st); return; }
  record(st, d.before);
}
function startPinch(st) {
  const [a, b] = [...st.pointers.values()];
  st.drag = { kind: "pinch", dist: Math.hypot(a[0] - b[0], a[1] - b[1]), mid: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2] };
}
function movePinch(st) {
  const [a, b] = [...st.pointers.values()], drag = st.drag;
  const dist = Math.hypot(a[0] - b[0], a[1] - b[1]), mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
  st.view.panX += mid[0] - drag.mid[0]; st.view.panY += mid[1] - drag.mid[1];
  if (drag.dist > 0) zoomAt(st, dist / drag.dist, mid[0], mid[1]);
  drag.dist = dist; drag.mid = mid; requestDraw(st);
}
function hover(st, e) {
  const [sx, sy] = localPoint(st, e), h = hit(st, sx, sy, e.pointerType === "touch");
  st.dom.canvas.style.cursor = st.spaceDown ? "grab"
    : { joint: "pointer", handJoint: "pointer", move: "move", rotate: "alias", scale: "nwse-resize", pan: "default" }[h.kind];
}
function wheel(st, e) {
  if (!(e.ctrlKey || e.metaKey)) return;        // plain wheel scrolls the page; ctrl/pinch zooms
  e.preventDefault();
  const [sx, sy] = localPoint(st, e); zoomAt(st, Math.exp(-e.deltaY * 0.0025), sx, sy);
}

function installGestures(st) {
  const canvas = st.dom.canvas;
  canvas.addEventListener("pointerdown", e => pointerDown(st, e));
  canvas.addEventListener("pointermove", e => pointerMove(st, e));
  canvas.addEventListener("pointerup", e => endPointer(st, e));
  canvas.addEventListener("pointercancel", e => endPointer(st, e));
  canvas.addEventListener("lostpointercapture", e => { if (st.pointers.has(e.pointerId)) endPointer(st, e); });
  canvas.addEventListener("wheel", e => wheel(st, e), { passive: false });
}
