// ---- main.js: the editor's state, edits and commits, the value from Python, start-up ----------
// The only file that touches Gradio's js_on_load arguments (element, props, trigger, watch).

// All mutable state of one editor, passed explicitly to every function above.
function createState(element, props, trigger) {
  const root = element.querySelector(".pe-root");
  const stage = root.querySelector(".pe-stage"), canvas = root.querySelector(".pe-canvas");
  const cfg = props.editor_config;        // skeleton (pose_db.scene.skeleton) and presets, from Python
  const scene = { w: cfg.default_size[0], h: cfg.default_size[1], people: [] };
  return {
    cfg, props, trigger,
    dom: { root, stage, canvas, ctx: canvas.getContext("2d"), toolbar: root.querySelector(".pe-toolbar"),
      statusLine: root.querySelector(".pe-status"), empty: root.querySelector(".pe-empty") },
    // model
    scene,                                // see model.js
    sel: { p: -1, j: -1 },                // selected person and joint (-1: none)
    hand: null,                           // hand mode: {p, key, label, i (selected hand joint), view (to return to)}
    past: [], future: [],                 // undo / redo snapshots
    lastSignature: signature(scene),      // the OpenPose JSON last committed or received
    // view
    view: { zoom: 1, panX: 0, panY: 0, W: 0, H: 0 },
    bg: { img: null, url: null, opacity: 0.5 },
    frameQueued: false,
    drawTimes: [],                        // recent draw durations (ms), for the smoothness test
    subjectColors: cfg.subject_colors.slice(),   // the Subjects panel may recolour / rename
    subjectNames: [],
    // gestures
    drag: null, pointers: new Map(), spaceDown: false,
    // toolbar
    ui: { buttons: {}, sizeSelect: null, opacityInput: null, jsonInput: null, photoInput: null, sayTimer: null },
    actions: null,
  };
}

function select(st, p, j) {
  st.sel = { p: p >= 0 && p < st.scene.people.length ? p : -1, j: -1 };
  if (st.sel.p >= 0 && j >= 0 && j < st.cfg.names.length) st.sel.j = j;
  updateButtons(st); describe(st); requestDraw(st);
}
function refresh(st) {
  // Hand mode ends when its hand is gone (undo, delete, a new pose from Python).
  const h = st.hand;
  if (h && !(st.scene.people[h.p] && st.scene.people[h.p].extras[h.key])) { st.hand = null; Object.assign(st.view, h.view); }
  updateButtons(st); describe(st); requestDraw(st);
}
// After an edit: remember the state before it (if anything changed, hidden joints' places
// included) and commit when the OpenPose value itself changed.
function record(st, before) {
  if (JSON.stringify(before) === JSON.stringify(st.scene)) { requestDraw(st); return; }
  pushHistory(st, before);
  if (signature(before) !== signature(st.scene)) commit(st); else refresh(st);
}
// One user edit: snapshot, change (fn returns false to cancel), record, commit.
function edit(st, fn) {
  const before = clone(st.scene);
  if (fn() === false) return;
  record(st, before); select(st, st.sel.p, st.sel.j);
}
// The value goes to Python (props.value fires "change") plus a user "input" event.
function commit(st) {
  const value = toOpenPose(st.scene);
  st.lastSignature = JSON.stringify(value);
  st.props.value = value;
  st.trigger("input");
  refresh(st);
}
function undo(st) {
  if (!stepHistory(st, st.past, st.future)) return say(st, "Nothing to undo.");
  resize(st); commit(st);
}
function redo(st) {
  if (!stepHistory(st, st.future, st.past)) return say(st, "Nothing to redo.");
  resize(st); commit(st);
}

// A value from Python (fromServer) or from the API's setValue.
function load(st, value, fromServer) {
  st.drag = null;                       // the server's value wins over a gesture in flight
  let next;
  try { next = fromOpenPose(st.cfg, value, st.scene); } catch (err) { return say(st, `The pose could not be shown: ${err.message}.`, true); }
  const scene = st.scene;
  if (!next) next = { w: scene.w, h: scene.h, people: [] };
  if (signature(next) === signature(scene)) return;
  const sameShape = next.people.length === scene.people.length && next.w === scene.w && next.h === scene.h;
  if (fromServer && (scene.people.length || st.past.length)) pushHistory(st, clone(scene));
  st.scene = next; st.lastSignature = signature(next);
  if (!sameShape) { st.sel = { p: -1, j: -1 }; resetView(st); }
  resize(st); refresh(st);
}

// Names and colours of the subjects (the Subjects panel), for the halos and badges. Empty or
// invalid entries keep the defaults.
function setSubjects(st, names, colors) {
  st.subjectNames = (names || []).map(n => (typeof n === "string" ? n.trim() : ""));
  (colors || []).forEach((c, k) => {
    if (typeof c === "string" && c.trim() && CSS.supports("color", c.trim()) && k < st.subjectColors.length) st.subjectColors[k] = c.trim();
  });
  requestDraw(st);
}

// A small API for tests and power users: element.poseEditor.
function editorApi(st) {
  return {
    getValue: () => toOpenPose(st.scene), setValue: v => { load(st, v, false); commit(st); },
    importText: (text, name) => importText(st, text, name),
    select: (p, j) => select(st, p, j), actions: st.actions, undo: () => undo(st), redo: () => redo(st),
    setSubjects: (names, colors) => setSubjects(st, names, colors),
    subjects: () => ({ names: st.subjectNames.slice(), colors: st.subjectColors.slice() }),
    poseMapDataURL: () => poseMap(st.cfg, st.scene).toDataURL("image/png"),
    hand: () => (st.hand ? { p: st.hand.p, key: st.hand.key, i: st.hand.i } : null),
    toScreen: (x, y) => { const r = st.dom.canvas.getBoundingClientRect(), q = toScreen(st, x, y); return [r.left + q[0], r.top + q[1]]; },
    drawTimes: st.drawTimes, history: () => ({ past: st.past.length, future: st.future.length }), view: st.view,
  };
}

function startEditor(element, props, trigger, watch) {
  const st = createState(element, props, trigger), stage = st.dom.stage;
  st.actions = makeActions(st);
  buildToolbar(st);
  installGestures(st);
  installKeyboard(st);
  watch("value", () => {
    const v = props.value;
    if (v && typeof v === "object" && JSON.stringify(v) === st.lastSignature) return;
    load(st, v, true);
  });
  element.poseEditor = editorApi(st);
  stage.setAttribute("aria-label", `${st.cfg.label}: ${stage.getAttribute("aria-label")}`);
  new ResizeObserver(() => resize(st)).observe(stage);
  try { const v = fromOpenPose(st.cfg, props.value, null); if (v) st.scene = v; } catch (err) { say(st, `The pose could not be shown: ${err.message}.`, true); }
  st.lastSignature = signature(st.scene);
  resize(st); refresh(st);
  st.dom.root.dataset.ready = "1";
  return st;
}

startEditor(element, props, trigger, watch);
