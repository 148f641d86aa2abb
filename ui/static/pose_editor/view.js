// ---- view.js: scene <-> screen, and drawing the canvas ----------------------------------------
// Reads st.scene, st.sel, st.view, st.bg, st.hand and the subject colours; writes only the view
// and the canvas. Drawing is batched into one animation frame (requestDraw).

function fitScale(st) { return Math.min(st.view.W / st.scene.w, st.view.H / st.scene.h) * 0.94; }
function scale(st) { return fitScale(st) * st.view.zoom; }
function origin(st) {
  const s = scale(st), { view, scene } = st;
  return [(view.W - scene.w * s) / 2 + view.panX, (view.H - scene.h * s) / 2 + view.panY];
}
function toScreen(st, x, y) { const s = scale(st), o = origin(st); return [o[0] + x * s, o[1] + y * s]; }
function toScene(st, sx, sy) { const s = scale(st), o = origin(st); return [(sx - o[0]) / s, (sy - o[1]) / s]; }
function zoomAt(st, factor, sx, sy) {
  const before = toScene(st, sx, sy), view = st.view;
  view.zoom = Math.min(8, Math.max(0.25, view.zoom * factor));
  const s = scale(st);
  view.panX = sx - before[0] * s - (view.W - st.scene.w * s) / 2;
  view.panY = sy - before[1] * s - (view.H - st.scene.h * s) / 2;
  requestDraw(st); updateButtons(st);
}
function resetView(st) { st.view.zoom = 1; st.view.panX = 0; st.view.panY = 0; requestDraw(st); updateButtons(st); }

// The canvas follows the stage's width; its height follows the scene's aspect, within bounds.
function resize(st) {
  const { stage, canvas } = st.dom, view = st.view;
  const width = stage.clientWidth;
  if (!width) return;
  const maxH = Math.max(280, Math.min(window.innerHeight * 0.72, 760));
  const height = Math.round(Math.min(maxH, Math.max(260, width * st.scene.h / st.scene.w)));
  if (width === view.W && height === view.H) return;
  view.W = width; view.H = height;
  const dpr = window.devicePixelRatio || 1;
  canvas.style.height = height + "px";
  canvas.width = Math.round(width * dpr); canvas.height = Math.round(height * dpr);
  requestDraw(st);
}

function subjectColor(st, k) { return st.subjectColors[k % st.subjectColors.length]; }
function rgb(c, f = 1) { return `rgb(${Math.round(c[0] * f)},${Math.round(c[1] * f)},${Math.round(c[2] * f)})`; }
function requestDraw(st) {
  if (st.frameQueued) return;
  st.frameQueued = true;
  requestAnimationFrame(() => { st.frameQueued = false; draw(st); });
}
function draw(st) {
  const t0 = performance.now();
  const { canvas, ctx } = st.dom, { scene, sel, view, bg, cfg } = st;
  const dpr = canvas.width / Math.max(1, view.W);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = "#2a2c33"; ctx.fillRect(0, 0, view.W, view.H);
  const s = scale(st), [ox, oy] = origin(st);
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
    ctx.strokeStyle = subjectColor(st, p.subject);
    ctx.globalAlpha = 0.55; ctx.lineWidth = limbW + Math.max(8, 10 * unit);
    strokeLimbs(st, p);
    ctx.globalAlpha = 1;
  });
  scene.people.forEach((p, n) => {
    ctx.globalAlpha = st.hand ? 0.35 : 1;                      // hand mode: the body stays behind the hand
    ctx.lineWidth = limbW;
    cfg.limbs.forEach(([a, b], i) => {
      if (!p.kp[a][2] || !p.kp[b][2]) return;
      const A = toScreen(st, p.kp[a][0], p.kp[a][1]), B = toScreen(st, p.kp[b][0], p.kp[b][1]);
      ctx.strokeStyle = rgb(cfg.colors[i], 0.6);
      ctx.beginPath(); ctx.moveTo(A[0], A[1]); ctx.lineTo(B[0], B[1]); ctx.stroke();
    });
    p.kp.forEach((k, j) => {
      const [x, y] = toScreen(st, k[0], k[1]);
      if (!k[2]) {
        if (n !== sel.p) return;                                // ghosts of the selected person only
        ctx.setLineDash([3, 3]); ctx.strokeStyle = "rgba(255,255,255,0.8)"; ctx.lineWidth = 1.5;
        ctx.beginPath(); ctx.arc(x, y, jointR + 1, 0, 2 * Math.PI); ctx.stroke(); ctx.setLineDash([]);
      } else {
        ctx.fillStyle = rgb(cfg.colors[j]);
        ctx.beginPath(); ctx.arc(x, y, jointR, 0, 2 * Math.PI); ctx.fill();
      }
      if (n === sel.p && j === sel.j) {
        ctx.strokeStyle = "#fff"; ctx.lineWidth = 2;
        ctx.beginPath(); ctx.arc(x, y, jointR + 5, 0, 2 * Math.PI); ctx.stroke();
      }
    });
    ctx.globalAlpha = 1;
    drawHands(st, p, n, unit);
    badge(st, p, n);
  });
  if (sel.p >= 0 && scene.people[sel.p] && !st.hand) drawHandles(st, scene.people[sel.p]);   // hand mode edits fingers only
  const dt = performance.now() - t0;
  st.drawTimes.push(dt); if (st.drawTimes.length > 600) st.drawTimes.shift();
}
// Hands as draw_handpose colours them; in hand mode (st.hand) the edited hand's joints grow
// into handles and its selected joint (st.hand.i) gets a ring.
function drawHands(st, p, n, unit) {
  const ctx = st.dom.ctx, cfg = st.cfg, active = st.hand && st.hand.p === n ? st.hand.key : null;
  for (const { key } of cfg.hands) {
    const arr = p.extras[key];
    if (!arr) continue;
    const on = i => arr[3 * i + 2] > 0, at = i => toScreen(st, arr[3 * i], arr[3 * i + 1]);
    ctx.lineWidth = Math.max(1.5, 2 * unit);
    cfg.hand_limbs.forEach(([a, b], i) => {
      if (!on(a) || !on(b)) return;
      const A = at(a), B = at(b);
      ctx.strokeStyle = rgb(cfg.hand_colors[i]);
      ctx.beginPath(); ctx.moveTo(A[0], A[1]); ctx.lineTo(B[0], B[1]); ctx.stroke();
    });
    const r = key === active ? 6 : Math.max(1.5, 2.5 * unit);    // smaller than the map's 4: fingers stay readable
    for (let i = 0; i < arr.length / 3; i++) {
      if (!on(i)) continue;
      const [x, y] = at(i);
      ctx.fillStyle = rgb(cfg.hand_joint_color); ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.fill();
      if (key !== active) continue;
      ctx.strokeStyle = "rgba(255,255,255,0.85)"; ctx.lineWidth = 1.5; ctx.stroke();
      if (i === st.hand.i) { ctx.strokeStyle = "#fff"; ctx.lineWidth = 2; ctx.beginPath(); ctx.arc(x, y, r + 5, 0, 2 * Math.PI); ctx.stroke(); }
    }
  }
}
// Hand mode: zoom the view onto one hand (its points and wrist filling ~70% of the canvas);
// leaving it puts the view back as it was.
function focusHand(st) {
  const { view, scene, hand } = st, p = scene.people[hand.p], arr = p.extras[hand.key];
  const b = handBox(arr), pad = 6;
  const bw = Math.max(24, b[2] - b[0] + 2 * pad), bh = Math.max(24, b[3] - b[1] + 2 * pad);
  view.zoom = Math.min(16, Math.max(1, 0.7 * Math.min(view.W / bw, view.H / bh) / fitScale(st)));
  const s = scale(st), cx = (b[0] + b[2]) / 2, cy = (b[1] + b[3]) / 2;
  view.panX = view.W / 2 - cx * s - (view.W - scene.w * s) / 2;
  view.panY = view.H / 2 - cy * s - (view.H - scene.h * s) / 2;
  requestDraw(st);
}
function strokeLimbs(st, p) {
  const ctx = st.dom.ctx;
  ctx.beginPath();
  for (const [a, b] of st.cfg.limbs) {
    if (!p.kp[a][2] || !p.kp[b][2]) continue;
    const A = toScreen(st, p.kp[a][0], p.kp[a][1]), B = toScreen(st, p.kp[b][0], p.kp[b][1]);
    ctx.moveTo(A[0], A[1]); ctx.lineTo(B[0], B[1]);
  }
  ctx.stroke();
}
function badge(st, p, n) {
  const ctx = st.dom.ctx, b = bbox(p);
  if (!isFinite(b[0])) return;
  const [x, y] = toScreen(st, (b[0] + b[2]) / 2, b[1]);
  const name = p.subject === null ? "" : (st.subjectNames[p.subject] || `S${p.subject + 1}`).slice(0, 16);
  const text = p.subject === null ? `P${n + 1}` : `P${n + 1} · ${name}`;
  ctx.font = "600 11px system-ui, sans-serif";
  const w = ctx.measureText(text).width + 10;
  const fill = p.subject === null ? "rgba(90,94,110,0.92)" : subjectColor(st, p.subject);
  ctx.fillStyle = fill; roundRect(ctx, x - w / 2, y - 30, w, 17, 8); ctx.fill();
  ctx.fillStyle = p.subject === null || luminance(fill) < 0.5 ? "#fff" : "#111"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
  ctx.fillText(text, x, y - 21.5);
}
function luminance(css) {
  const m = /^#?([0-9a-f]{6})$/i.exec(css.trim());
  if (!m) return 1;
  const v = parseInt(m[1], 16);
  return (0.299 * (v >> 16) + 0.587 * ((v >> 8) & 255) + 0.114 * (v & 255)) / 255;
}
function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath(); ctx.moveTo(x + r, y); ctx.arcTo(x + w, y, x + w, y + h, r); ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r); ctx.arcTo(x, y, x + w, y, r); ctx.closePath();
}
// Selection box with four scale corners and a rotation knob above it (screen coordinates).
function handles(st, p) {
  const b = bbox(p), pad = 14;
  const [x0, y0] = toScreen(st, b[0], b[1]), [x1, y1] = toScreen(st, b[2], b[3]);
  const box = [x0 - pad, y0 - pad, x1 + pad, y1 + pad];
  return { box, corners: [[box[0], box[1]], [box[2], box[1]], [box[0], box[3]], [box[2], box[3]]],
    rotate: [box[2] + 20, box[1] - 20] };
}
function drawHandles(st, p) {
  const ctx = st.dom.ctx, h = handles(st, p), [x0, y0, x1, y1] = h.box;
  ctx.setLineDash([5, 4]); ctx.strokeStyle = "rgba(255,255,255,0.75)"; ctx.lineWidth = 1;
  ctx.strokeRect(x0, y0, x1 - x0, y1 - y0); ctx.setLineDash([]);
  ctx.beginPath(); ctx.moveTo(x1, y0); ctx.lineTo(h.rotate[0], h.rotate[1]); ctx.stroke();
  ctx.fillStyle = "#fff"; ctx.strokeStyle = "#7048e8"; ctx.lineWidth = 2;
  for (const [x, y] of h.corners) { ctx.fillRect(x - 5, y - 5, 10, 10); ctx.strokeRect(x - 5, y - 5, 10, 10); }
  ctx.beginPath(); ctx.arc(h.rotate[0], h.rotate[1], 7, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
}

// The pose map as controlnet_aux's draw_bodypose draws it (pose_db.scene.render.render_pose_map),
// hands included (its hands=True, as openpose_full): limbs are filled ellipses at 0.6
// brightness, joints filled circles, sized for 512 px.
function poseMap(cfg, scene) {
  const off = document.createElement("canvas"); off.width = scene.w; off.height = scene.h;
  const c = off.getContext("2d"), unit = Math.max(scene.w, scene.h) / 512;
  const half = Math.max(1, Math.round(4 * unit)), radius = Math.max(1, Math.round(4 * unit));
  c.fillStyle = "#000"; c.fillRect(0, 0, scene.w, scene.h);
  for (const p of scene.people) {
    cfg.limbs.forEach(([a, b], i) => {
      if (!p.kp[a][2] || !p.kp[b][2]) return;
      const [xa, ya] = p.kp[a], [xb, yb] = p.kp[b];
      c.fillStyle = `rgb(${cfg.colors[i].map(v => Math.floor(v * 0.6)).join(",")})`;
      c.beginPath();
      c.ellipse(Math.trunc((xa + xb) / 2), Math.trunc((ya + yb) / 2), Math.max(0.5, Math.trunc(Math.hypot(xa - xb, ya - yb) / 2)),
        half, Math.atan2(ya - yb, xa - xb), 0, 2 * Math.PI);
      c.fill();
    });
    p.kp.forEach((k, j) => {
      if (!k[2]) return;
      c.fillStyle = rgb(cfg.colors[j]); c.beginPath(); c.arc(Math.trunc(k[0]), Math.trunc(k[1]), radius, 0, 2 * Math.PI); c.fill();
    });
    for (const { key } of cfg.hands) {                 // then the hands, as draw_handpose (openpose_full)
      const arr = p.extras[key];
      if (!arr) continue;
      const on = i => arr[3 * i + 2] > 0 && Math.trunc(arr[3 * i]) > 0 && Math.trunc(arr[3 * i + 1]) > 0;
      c.lineWidth = Math.max(1, Math.round(2 * unit));
      cfg.hand_limbs.forEach(([a, b], i) => {
        if (!on(a) || !on(b)) return;
        c.strokeStyle = rgb(cfg.hand_colors[i]); c.beginPath();
        c.moveTo(Math.trunc(arr[3 * a]), Math.trunc(arr[3 * a + 1])); c.lineTo(Math.trunc(arr[3 * b]), Math.trunc(arr[3 * b + 1])); c.stroke();
      });
      c.fillStyle = rgb(cfg.hand_joint_color);
      for (let i = 0; i < arr.length / 3; i++) if (on(i)) { c.beginPath(); c.arc(Math.trunc(arr[3 * i]), Math.trunc(arr[3 * i + 1]), radius, 0, 2 * Math.PI); c.fill(); }
    }
  }
  return off;
}
