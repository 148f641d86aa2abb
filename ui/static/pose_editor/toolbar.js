// ---- toolbar.js: buttons, file inputs, keyboard shortcuts, the status line --------------------
// The toolbar's buttons and the keys call the same st.actions (built by makeActions). Widgets
// the rest of the editor updates live in st.ui.

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
  addHand: "M7 13V6a1.5 1.5 0 0 1 3 0v5M10 11V4a1.5 1.5 0 0 1 3 0v7M13 11V5a1.5 1.5 0 0 1 3 0v7M16 12V8a1.5 1.5 0 0 1 3 0v6a7 7 0 0 1-12 4l-3-4",
  editHand: "M11 4a7 7 0 1 0 .01 0M21 21l-5-5M9 14v-5M11 14V8M13 14V9",
  removeHand: "M7 13V6a1.5 1.5 0 0 1 3 0v5M10 11V4a1.5 1.5 0 0 1 3 0v7M13 11V8M4 21 20 5",
};
// [group, [[action, aria-label, tooltip, visible text?], ...]]
const BUTTONS = [
  ["person", [["add", "Add person", "Add a standing person (N)", "Person"], ["duplicate", "Duplicate person", "Duplicate the selected person (Ctrl+D)"],
    ["remove", "Delete person", "Delete the selected person (Delete)"], ["mirror", "Mirror person", "Mirror the selected person, swapping left and right (M)"],
    ["toggleJoint", "Hide or show joint", "Hide or show the selected joint (H)"]]],
  ["transform", [["rotateLeft", "Rotate left", "Rotate the person 15° left (Shift+R; Shift+drag or the round handle rotates freely)"],
    ["rotateRight", "Rotate right", "Rotate the person 15° right (R)"],
    ["shrink", "Make smaller", "Scale the person down ([; Alt+drag or the corner handles scale freely)"], ["grow", "Make larger", "Scale the person up (])"]]],
  ["hand", [["addHand", "Add hand", "Add an open hand at the selected wrist (click a wrist first)", "Hand"],
    ["editHand", "Edit hand", "Zoom to the selected wrist's hand to move its finger joints (E; Esc returns)"],
    ["removeHand", "Delete hand", "Delete the hand at the selected wrist"]]],
  ["history", [["undo", "Undo", "Undo (Ctrl+Z)"], ["redo", "Redo", "Redo (Ctrl+Shift+Z or Ctrl+Y)"]]],
  ["view", [["zoomOut", "Zoom out", "Zoom out (-)"], ["fit", "Fit canvas", "Fit the canvas (0)"], ["zoomIn", "Zoom in", "Zoom in (+; Ctrl+wheel or pinch)"]]],
  ["size", []],
  ["photo", [["photo", "Background photo", "Load a photo to trace over (stays in your browser)", "Photo"], ["clearPhoto", "Remove background photo", "Remove the background photo"]]],
  ["file", [["importJSON", "Import OpenPose JSON", "Import OpenPose JSON", "Import"], ["exportJSON", "Export OpenPose JSON", "Download the pose as OpenPose JSON", "JSON"],
    ["exportPNG", "Export pose map PNG", "Download the pose map PNG (ControlNet style)", "PNG"]]],
];

// Everything a button or a key can do; each edit goes through edit() (one undo step, one commit).
function makeActions(st) {
  const cfg = st.cfg, view = st.view;
  const person = () => st.scene.people[st.sel.p];
  const full = () => st.scene.people.length >= cfg.max_people;
  const tooMany = () => say(st, `The canvas holds at most ${cfg.max_people} people.`, true);
  return {
    add() {
      if (full()) return tooMany();
      edit(st, () => { st.scene.people.push(standingPerson(cfg, st.scene)); st.sel = { p: st.scene.people.length - 1, j: -1 }; });
    },
    duplicate() {
      if (!needPerson(st)) return;
      if (full()) return tooMany();
      edit(st, () => { st.scene.people.push(duplicatePerson(st.scene, person())); st.sel = { p: st.scene.people.length - 1, j: -1 }; });
    },
    remove() {
      if (!needPerson(st)) return;
      edit(st, () => { st.scene.people.splice(st.sel.p, 1); st.sel = { p: Math.min(st.sel.p, st.scene.people.length - 1), j: -1 }; });
    },
    mirror() {
      if (needPerson(st)) edit(st, () => { mirrorPerson(cfg, person()); st.sel.j = st.sel.j >= 0 ? cfg.mirror[st.sel.j] : -1; });
    },
    toggleJoint() {
      if (!needPerson(st)) return;
      if (st.sel.j < 0) return say(st, "Select a joint first (click it), then hide or show it.", true);
      const p = person(), k = p.kp[st.sel.j];
      if (k[2] && p.kp.filter(q => q[2]).length === 1) return say(st, "A person needs one visible joint; delete the person instead.", true);
      edit(st, () => { k[2] = !k[2]; });
    },
    rotateLeft() { if (needPerson(st)) edit(st, () => rotatePerson(person(), -Math.PI / 12)); },
    rotateRight() { if (needPerson(st)) edit(st, () => rotatePerson(person(), Math.PI / 12)); },
    shrink() { if (needPerson(st)) edit(st, () => scalePerson(person(), 1 / 1.1)); },
    grow() { if (needPerson(st)) edit(st, () => scalePerson(person(), 1.1)); },
    addHand() {
      const h = wristHand(st);
      if (!h) return;
      if (person().extras[h.key]) return say(st, `This ${h.label} is already there: Edit hand moves its fingers.`);
      edit(st, () => { person().extras[h.key] = openHand(cfg, person(), h); });
      say(st, `Added an open ${h.label}; Edit hand (E) zooms in to move its fingers.`);
    },
    editHand() {
      if (st.hand) return leaveHand(st);
      const h = wristHand(st);
      if (!h) return;
      if (!person().extras[h.key]) return say(st, `This wrist has no ${h.label} yet: Add hand first.`, true);
      st.hand = { p: st.sel.p, key: h.key, label: h.label, i: -1, view: { ...view } };
      focusHand(st); refresh(st);
    },
    removeHand() {
      const h = st.hand ? st.cfg.hands.find(q => q.key === st.hand.key) : wristHand(st);
      if (!h) return;
      if (!person().extras[h.key]) return say(st, `This wrist has no ${h.label}.`, true);
      edit(st, () => { delete person().extras[h.key]; });
    },
    undo: () => undo(st),
    redo: () => redo(st),
    zoomIn() { zoomAt(st, 1.25, view.W / 2, view.H / 2); },
    zoomOut() { zoomAt(st, 0.8, view.W / 2, view.H / 2); },
    fit: () => resetView(st),
    photo() { st.ui.photoInput.click(); },
    clearPhoto() {
      if (st.bg.url) URL.revokeObjectURL(st.bg.url);
      st.bg.img = null; st.bg.url = null; updateButtons(st); requestDraw(st); say(st, "Background photo removed.");
    },
    importJSON() { st.ui.jsonInput.click(); },
    exportJSON() { download(st, new Blob([JSON.stringify(toOpenPose(st.scene), null, 1)], { type: "application/json" }), "pose.json"); },
    exportPNG() { poseMap(cfg, st.scene).toBlob(b => download(st, b, "pose_map.png"), "image/png"); },
  };
}
// The hand entry of the selected wrist (saying what to do when no wrist is selected).
function wristHand(st) {
  const h = st.sel.p >= 0 ? handAt(st.cfg, st.sel.j) : null;
  if (!h) say(st, "Select a wrist first (click it), then add or edit its hand.", true);
  return h;
}
// Back from hand mode to the view the user had.
function leaveHand(st) {
  const saved = st.hand && st.hand.view;
  st.hand = null;
  if (saved) Object.assign(st.view, { zoom: saved.zoom, panX: saved.panX, panY: saved.panY });
  refresh(st);
}
function needPerson(st) {
  if (st.sel.p < 0) { say(st, "Select a person first: click a limb or a joint.", true); return false; }
  return true;
}
function setSize(st, w, h) {
  if (w === st.scene.w && h === st.scene.h) return;
  edit(st, () => resizeScene(st.scene, w, h));
  resetView(st); resize(st);
}
function nudge(st, dx, dy) {
  if (!needPerson(st)) return;
  edit(st, () => {
    const p = st.scene.people[st.sel.p], j = st.sel.j;
    if (j >= 0) { p.kp[j][0] += dx; p.kp[j][1] += dy; clampPoint(st.scene, p.kp[j]); }
    else affine(p, [1, 0, 0, 1], [dx, dy]);
  });
}

function buildToolbar(st) {
  const ui = st.ui, stage = st.dom.stage;
  for (const [group, items] of BUTTONS) {
    const g = document.createElement("div"); g.className = `pe-group pe-g-${group}`; g.setAttribute("role", "group");
    for (const [name, label, title, text] of items) {
      const b = document.createElement("button");
      b.type = "button"; b.className = "pe-btn"; b.dataset.action = name;
      b.setAttribute("aria-label", label); b.title = title;
      b.innerHTML = `<svg viewBox="0 0 24 24" aria-hidden="true"><path d="${ICONS[name]}"/></svg>` + (text ? `<span>${text}</span>` : "");
      b.addEventListener("click", () => { st.actions[name](); if (!["photo", "importJSON"].includes(name)) stage.focus({ preventScroll: true }); });
      g.appendChild(b); ui.buttons[name] = b;
    }
    if (group === "size") {
      const sizes = ui.sizeSelect = document.createElement("select"); sizes.className = "pe-size";
      sizes.setAttribute("aria-label", "Canvas size and aspect"); sizes.title = "Canvas size and aspect";
      sizes.addEventListener("change", () => { const [w, h] = sizes.value.split("x").map(Number); setSize(st, w, h); });
      g.appendChild(sizes);
    }
    if (group === "photo") {
      const opacity = ui.opacityInput = document.createElement("input");
      Object.assign(opacity, { type: "range", min: "0", max: "100", value: "50", className: "pe-opacity", title: "Photo opacity" });
      opacity.setAttribute("aria-label", "Background photo opacity");
      opacity.addEventListener("input", () => { st.bg.opacity = Number(opacity.value) / 100; requestDraw(st); });
      g.insertBefore(opacity, ui.buttons.clearPhoto);
    }
    st.dom.toolbar.appendChild(g);
  }
  ui.jsonInput = fileInput(st, ".json,application/json", f => {
    if (f.size > 5e6) return say(st, "That file is too large to be OpenPose JSON.", true);
    f.text().then(text => importText(st, text, f.name));
  });
  ui.photoInput = fileInput(st, "image/*", f => loadPhoto(st, f));
}
function fileInput(st, accept, onFile) {
  const input = document.createElement("input"); input.type = "file"; input.accept = accept; input.hidden = true;
  input.addEventListener("change", () => { const f = input.files && input.files[0]; input.value = ""; if (f) onFile(f); });
  st.dom.root.appendChild(input); return input;
}
// The background photo stays in the browser (an object URL), drawn under the skeletons.
function loadPhoto(st, f) {
  const url = URL.createObjectURL(f), img = new Image(), bg = st.bg;
  img.onload = () => {
    if (bg.url) URL.revokeObjectURL(bg.url);
    bg.img = img; bg.url = url; updateButtons(st);
    const scene = st.scene;
    if (!scene.people.length) {            // an empty canvas takes the photo's aspect
      const long = Math.max(scene.w, scene.h), k = long / Math.max(img.naturalWidth, img.naturalHeight);
      setSize(st, Math.max(st.cfg.canvas_min, Math.round(img.naturalWidth * k / 16) * 16),
        Math.max(st.cfg.canvas_min, Math.round(img.naturalHeight * k / 16) * 16));
    }
    say(st, "Photo loaded: trace over it; adjust its opacity with the slider."); requestDraw(st);
  };
  img.onerror = () => { URL.revokeObjectURL(url); say(st, "That file is not an image this browser can show.", true); };
  img.src = url;
}
function importText(st, text, name) {
  let next;
  try { next = fromOpenPose(st.cfg, text, null); } catch (err) { return say(st, `Cannot import ${name || "that JSON"}: ${err.message}.`, true); }
  if (!next) return say(st, "That file is empty.", true);
  edit(st, () => { st.scene = next; st.sel = { p: next.people.length ? 0 : -1, j: -1 }; });
  resetView(st); resize(st); say(st, `Imported ${next.people.length} people from ${name || "JSON"}.`);
}
function download(st, blob, name) {
  const a = document.createElement("a"); a.href = URL.createObjectURL(blob); a.download = name;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 4000);
  say(st, `Saved ${name}.`);
}

function updateButtons(st) {
  const { buttons, sizeSelect, opacityInput } = st.ui, { scene, sel, cfg } = st;
  const has = sel.p >= 0;
  for (const n of ["duplicate", "remove", "mirror", "toggleJoint", "rotateLeft", "rotateRight", "shrink", "grow"]) buttons[n].disabled = !has;
  buttons.add.disabled = scene.people.length >= cfg.max_people;
  const wrist = has ? handAt(cfg, sel.j) : null, withHand = !!(wrist && scene.people[sel.p].extras[wrist.key]);
  buttons.addHand.disabled = !wrist || withHand;
  buttons.editHand.disabled = !st.hand && !withHand; buttons.removeHand.disabled = !st.hand && !withHand;
  buttons.editHand.setAttribute("aria-pressed", String(!!st.hand));
  st.dom.root.classList.toggle("pe-hand-mode", !!st.hand);
  buttons.undo.disabled = !st.past.length; buttons.redo.disabled = !st.future.length;
  buttons.clearPhoto.disabled = !st.bg.img; opacityInput.disabled = !st.bg.img;
  buttons.toggleJoint.setAttribute("aria-pressed", String(has && sel.j >= 0 && !scene.people[sel.p].kp[sel.j][2]));
  const key = `${scene.w}x${scene.h}`;
  const opts = cfg.sizes.map(s => [`${s.width}x${s.height}`, `${s.label} · ${s.width}×${s.height}`]);
  if (!opts.some(([v]) => v === key)) opts.unshift([key, `Custom · ${scene.w}×${scene.h}`]);
  if (sizeSelect.dataset.key !== JSON.stringify(opts)) {
    sizeSelect.innerHTML = ""; for (const [v, t] of opts) sizeSelect.add(new Option(t, v));
    sizeSelect.dataset.key = JSON.stringify(opts);
  }
  sizeSelect.value = key;
  st.dom.empty.hidden = scene.people.length > 0;
}
// A message in the status line (errors in red), then back to describing the scene.
function say(st, text, error) {
  const line = st.dom.statusLine;
  line.textContent = text; line.classList.toggle("pe-error", !!error);
  clearTimeout(st.ui.sayTimer); st.ui.sayTimer = setTimeout(() => describe(st), error ? 6000 : 3000);
}
function describe(st) {
  const line = st.dom.statusLine, { scene, sel, cfg } = st;
  line.classList.remove("pe-error");
  const n = scene.people.length;
  if (!n) { line.textContent = `${scene.w}×${scene.h} canvas, empty.`; return; }
  let text = `${scene.w}×${scene.h} · ${n} ${n === 1 ? "person" : "people"}`;
  if (st.hand) {
    line.textContent = `Editing the ${st.hand.label} of person ${st.hand.p + 1} · drag a finger joint · Esc returns`
      + (st.hand.i >= 0 ? ` · ${cfg.hand_names[st.hand.i].replace("_", " ")}` : "");
    return;
  }
  if (sel.p >= 0) {
    const p = scene.people[sel.p];
    text += ` · Person ${sel.p + 1}${p.subject !== null ? ` (subject ${p.subject + 1})` : ""}`;
    if (sel.j >= 0) text += ` · ${cfg.names[sel.j].replace("_", " ")}${p.kp[sel.j][2] ? "" : " (hidden)"}`;
    else text += " · drag to move, Shift+drag rotates, Alt+drag scales";
  } else text += " · click a joint or limb to select";
  line.textContent = text;
}

// Keys act only while the editor has focus, and never while typing in one of its inputs.
function keyDown(st, e) {
  const { stage, canvas } = st.dom, actions = st.actions, n = st.scene.people.length, sel = st.sel;
  const tag = e.target.tagName;
  if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
  const mod = e.ctrlKey || e.metaKey, k = e.key.toLowerCase();
  let done = true;
  if (mod && k === "z" && !e.shiftKey) actions.undo();
  else if (mod && (k === "y" || (k === "z" && e.shiftKey))) actions.redo();
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
  else if (e.key === "Escape") { if (st.hand) leaveHand(st); else select(st, -1, -1); }
  else if (k === "e") actions.editHand();
  else if (e.key === "Tab" && e.target === stage && n && !(sel.p === (e.shiftKey ? 0 : n - 1)))
    select(st, sel.p < 0 ? (e.shiftKey ? n - 1 : 0) : sel.p + (e.shiftKey ? -1 : 1), -1);
  else if (e.key.startsWith("Arrow") && e.target === stage) {
    const step = e.shiftKey ? 10 : 1, d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
    nudge(st, d[0], d[1]);
  } else if (e.key === " " && e.target === stage) { st.spaceDown = true; canvas.style.cursor = "grab"; }
  else done = false;
  if (done) { e.preventDefault(); e.stopPropagation(); }
}
function installKeyboard(st) {
  st.dom.root.addEventListener("keydown", e => keyDown(st, e));
  st.dom.root.addEventListener("keyup", e => { if (e.key === " ") { st.spaceDown = false; st.dom.canvas.style.cursor = ""; } });
}
