"""Action specs: the data files the pose library is generated from, read and checked.

One YAML file per category in ``pose_db/actions/`` (format: ``actions/FORMAT.md``), plus the
shared ``_postures.yaml`` (base postures) and ``_axes.yaml`` (prompt vocabularies). Every
mistake an author can make is reported as a ``SpecError`` naming the file and the action.
"""

from __future__ import annotations

import difflib
import re
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from .rig.camera import VIEW_NAMES
from .rig.ik import POLES
from .rig.skeleton3d import JOINTS_3D, SIDES, body_model, mirror_angles, neutral_angles

ACTIONS_DIR = Path(__file__).with_name("actions")
MAX_ACTION_PEOPLE = 4
GROUND_MODES = ("feet", "lowest", "none")
FRAMINGS = ("full", "medium")
DEFAULT_VIEW_WEIGHTS = {"front": 4, "three_quarter": 4, "side": 2, "back": 1, "high_angle": 1.5, "low_angle": 1.5}
DEFAULT_CASTS = {1: "single", 2: "pair", 3: "trio"}
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_ACTION_KEYS = {"id", "name", "say", "aliases", "pose", "people", "contacts", "cast", "places", "views",
                "preferred_view", "framing", "mirror", "jitter"}
_PLACEMENT_KEYS = {"base", "at", "facing", "ground", "support", "lift", "on", "offset", "mirror"}
_SHORTHANDS = {"r_arm", "l_arm", "r_leg", "l_leg", "arms", "legs", "elbows", "knees"}
_CONTACT_KEYS = {"who", "hand", "foot", "to", "offset", "elbow", "knee"}


class SpecError(ValueError):
    """A mistake in an action spec file; the message names the file, the action and the fix."""


@dataclass(frozen=True)
class PersonSpec:
    """One person of an action: full joint angles (un-jittered) and how they are placed."""

    angles: dict[str, float]
    at: tuple[float, float] = (0.0, 0.0)
    facing: float = 0.0
    ground: str = "feet"
    support: tuple[str, ...] = ("r_ankle", "l_ankle")
    lift: float = 0.0
    on: tuple[int, str] | None = None
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class ContactSpec:
    """Send person ``who``'s ``side`` wrist (limb "arm") or ankle ("leg") to ``point`` of ``target``."""

    who: int
    limb: str
    side: str
    target: int
    point: str
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    pole: str | None = None


@dataclass(frozen=True)
class ActionSpec:
    """One action of the library, as its category file describes it."""

    id: str
    name: str
    category: str
    say: tuple[str, ...]  # the action phrases, aliases included (the variations draw from all)
    people: tuple[PersonSpec, ...]
    contacts: tuple[ContactSpec, ...]
    cast: str
    places: tuple[str, ...]
    views: dict[str, float]
    framing: tuple[str, ...] = ("full",)
    mirror: bool = True
    jitter: float = 1.0
    source: str = ""
    aliases: tuple[str, ...] = ()  # short names, synonyms, dataset labels (also in `say`)
    preferred_view: str = ""  # the view the action reads best from, shown first by retrieval ("" = default)

    @property
    def n_people(self) -> int:
        return len(self.people)


@dataclass(frozen=True)
class Posture:
    angles: dict[str, float]
    ground: str
    support: tuple[str, ...]
    lift: float = 0.0


@dataclass(frozen=True)
class CastMember:
    """One person as a prompt names them: ``"a father"``, possessive ``"his"``, body profile."""

    say: str
    poss: str
    profile: str

    def __str__(self) -> str:
        return self.say

    def __format__(self, spec: str) -> str:
        return format(self.say, spec)


@dataclass(frozen=True)
class CastEntry:
    """Who is in the picture: the group phrase and each member."""

    say: str
    members: tuple[CastMember, ...]

    @property
    def profiles(self) -> list[str]:
        return [m.profile for m in self.members]


@dataclass(frozen=True)
class Axes:
    """The prompt vocabularies of ``_axes.yaml``."""

    casts: dict[str, tuple[CastEntry, ...]]
    places: dict[str, tuple[str, ...]]
    view_after: dict[str, tuple[str, ...]]
    view_before: dict[str, tuple[str, ...]]
    framings: dict[str, tuple[str, ...]]


@dataclass
class _Where:
    """Error context: which file and action a message is about."""

    path: Path
    action: str | None = None
    extra: list[str] = field(default_factory=list)

    def error(self, message: str) -> SpecError:
        where = f"{self.path}"
        if self.action:
            where += f": action {self.action!r}"
        return SpecError(f"{where}: {message}")


# ---- loading -----------------------------------------------------------------------------------


def load_actions(specs_dir: str | Path | None = None) -> list[ActionSpec]:
    """Every action of every category file in ``specs_dir`` (default: the package's), checked."""
    root = Path(specs_dir) if specs_dir is not None else ACTIONS_DIR
    if not root.is_dir():
        raise SpecError(f"{root}: no such folder of action specs; pass the folder holding the category .yaml files.")
    postures = load_postures(_shared_file(root, "_postures.yaml"))
    axes = load_axes(_shared_file(root, "_axes.yaml"))
    actions: list[ActionSpec] = []
    seen: dict[str, Path] = {}
    files = sorted(p for p in root.glob("*.yaml") if not p.name.startswith("_"))
    if not files:
        raise SpecError(f"{root}: no category files (*.yaml not starting with '_') found.")
    for path in files:
        for action in _load_category(path, postures, axes):
            if action.id in seen:
                raise _Where(path, action.id).error(f"id already used in {seen[action.id]}; ids must be unique.")
            seen[action.id] = path
            actions.append(action)
    return actions


def _shared_file(root: Path, name: str) -> Path:
    """A shared file from the specs folder, else the package's (test folders need not copy it)."""
    own = root / name
    return own if own.exists() else ACTIONS_DIR / name


# libyaml's safe loader when PyYAML was built with it: ~10x faster on ~20 spec files.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> object:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None


@lru_cache(maxsize=8)
def load_postures(path: Path) -> dict[str, Posture]:
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping of posture names.")
    postures = {}
    for name, spec in data.items():
        where = _Where(path, None)
        angles = neutral_angles()
        angles.update(_angles(spec.get("angles", {}), where.error))
        postures[name] = Posture(angles=angles, ground=spec.get("ground", "feet"),
                                 support=tuple(spec.get("support", [])), lift=float(spec.get("lift", 0.0)))
    return postures


@lru_cache(maxsize=8)
def load_axes(path: Path) -> Axes:
    data = _read_yaml(path)
    casts = {}
    for name, entries in data["casts"].items():
        parsed = []
        for e in entries:
            if "roles" in e:
                members = tuple(CastMember(r, p, f) for r, p, f in zip(e["roles"], e["poss"], e["profiles"], strict=True))
            else:
                members = (CastMember(e["say"], e["poss"], e["profile"]),)
            for m in members:
                if m.profile not in body_model().profiles:
                    raise SpecError(f"{path}: cast {name!r}: unknown body profile {m.profile!r}.")
            parsed.append(CastEntry(e["say"], members))
        casts[name] = tuple(parsed)
    views = data["views"]
    return Axes(
        casts=casts,
        places={k: tuple(v) for k, v in data["places"].items()},
        view_after={k: tuple(v["after"]) for k, v in views.items()},
        view_before={k: tuple(v["before"]) for k, v in views.items()},
        framings={k: tuple(v) for k, v in data["framings"].items()},
    )


def _load_category(path: Path, postures: dict[str, Posture], axes: Axes) -> list[ActionSpec]:
    where = _Where(path)
    data = _read_yaml(path)
    if not isinstance(data, dict) or "actions" not in data:
        raise where.error("expected a mapping with 'category' and an 'actions' list.")
    category = data.get("category")
    if category != path.stem:
        raise where.error(f"category is {category!r} but must equal the file name {path.stem!r}.")
    unknown = set(data) - {"category", "actions", "places", "views", "preferred_view", "framing"}
    if unknown:
        raise where.error(f"unknown top-level key(s) {sorted(unknown)}; allowed: category, actions, places, views, "
                          "preferred_view, framing.")
    defaults = {k: data[k] for k in ("places", "views", "preferred_view", "framing") if k in data}
    if not isinstance(data["actions"], list) or not data["actions"]:
        raise where.error("'actions' must be a non-empty list.")
    return [_parse_action(raw, category, defaults, postures, axes, path) for raw in data["actions"]]


def _parse_action(raw: dict, category: str, defaults: dict, postures: dict[str, Posture], axes: Axes,
                  path: Path) -> ActionSpec:
    where = _Where(path, raw.get("id") if isinstance(raw, dict) else None)
    if not isinstance(raw, dict):
        raise where.error(f"each action must be a mapping, got {raw!r}.")
    _no_unknown(raw, _ACTION_KEYS, "action key", where)
    for key in ("id", "name", "say"):
        if key not in raw:
            raise where.error(f"missing required key {key!r}.")
    if not _ID.match(str(raw["id"])):
        raise where.error("id must be lowercase letters, digits and underscores, starting with a letter.")
    if ("pose" in raw) == ("people" in raw):
        raise where.error("give exactly one of 'pose' (one person) or 'people' (a list of 2-4).")
    raw_people = [raw["pose"]] if "pose" in raw else raw["people"]
    if not isinstance(raw_people, list) or not 1 <= len(raw_people) <= MAX_ACTION_PEOPLE:
        raise where.error(f"'people' must list 1 to {MAX_ACTION_PEOPLE} poses.")
    n = len(raw_people)
    people = tuple(_parse_person(p or {}, i, n, postures, where) for i, p in enumerate(raw_people))
    contacts = tuple(_parse_contact(c, k, n, where) for k, c in enumerate(raw.get("contacts") or []))
    cast = raw.get("cast", DEFAULT_CASTS.get(n, "trio"))
    if cast not in axes.casts:
        raise where.error(f"unknown cast {cast!r}; use one of {', '.join(axes.casts)}.")
    wrong = [e.say for e in axes.casts[cast] if len(e.members) != n]
    if wrong:
        raise where.error(f"cast {cast!r} has entries for {len(axes.casts[cast][0].members)} people, the action has {n}.")
    say = _parse_say(raw["say"], axes.casts[cast], where)
    aliases = _parse_aliases(raw.get("aliases", []), where)
    say = say + tuple(a for a in aliases if a not in say)  # aliases are drawn like any other phrase
    places = _parse_places(raw.get("places", defaults.get("places", ["outdoor"])), axes, where)
    views = _parse_views(raw.get("views", defaults.get("views", DEFAULT_VIEW_WEIGHTS)), where)
    preferred_view = _parse_preferred_view(raw.get("preferred_view", defaults.get("preferred_view", "")), views, where)
    framing = tuple(raw.get("framing", defaults.get("framing", ["full"])))
    if not framing or any(f not in FRAMINGS for f in framing):
        raise where.error(f"framing must list some of {FRAMINGS}, got {framing!r}.")
    if n > 1:
        framing = ("full",)  # a waist-up crop of a group hides whatever makes the interaction
    jitter = _number(raw.get("jitter", 1.0), "jitter", where)
    if jitter < 0:
        raise where.error("jitter must be >= 0.")
    return ActionSpec(
        id=raw["id"], name=str(raw["name"]), category=category, say=say, aliases=aliases, people=people, contacts=contacts,
        cast=cast, places=places, views=views, preferred_view=preferred_view, framing=framing,
        mirror=bool(raw.get("mirror", True)), jitter=jitter, source=str(path),
    )


def _parse_person(raw: dict, index: int, n: int, postures: dict[str, Posture], where: _Where) -> PersonSpec:
    if not isinstance(raw, dict):
        raise where.error(f"person {index}: a pose must be a mapping, got {raw!r}.")
    if True in raw:  # YAML 1.1 reads a bare `on:` key as the boolean true
        raw = {("on" if k is True else k): v for k, v in raw.items()}
    allowed = _PLACEMENT_KEYS | _SHORTHANDS | set(body_model().dof_names)
    _no_unknown(raw, allowed, f"person {index} pose key", where)
    base_name = raw.get("base", "stand")
    if base_name not in postures:
        raise where.error(f"person {index}: unknown base posture {base_name!r}; use one of {', '.join(postures)}.")
    base = postures[base_name]
    angles = dict(base.angles)
    if raw.get("mirror"):
        angles = mirror_angles(angles)
    overrides = {k: v for k, v in raw.items() if k not in _PLACEMENT_KEYS}
    angles.update(_angles(overrides, lambda m: where.error(f"person {index}: {m}")))
    on = None
    if "on" in raw:
        on_raw = raw["on"]
        if not (isinstance(on_raw, list) and len(on_raw) == 2):
            raise where.error(f"person {index}: 'on' must be [person, point].")
        on = (_person_index(on_raw[0], n, where, f"person {index} 'on'"), _point(on_raw[1], where))
        if on[0] == index:
            raise where.error(f"person {index}: cannot sit on themselves.")
    ground = raw.get("ground", "none" if on else base.ground)
    if ground not in GROUND_MODES:
        raise where.error(f"person {index}: ground must be one of {GROUND_MODES}, got {ground!r}.")
    support = tuple(raw.get("support", [] if on else base.support))
    if raw.get("mirror") and "support" not in raw:
        support = tuple(_swap_side(j) for j in support)
    for joint in support:
        _point(joint, where)
    return PersonSpec(
        angles=angles,
        at=_vector(raw.get("at", [0, 0]), 2, "at", where),
        facing=_number(raw.get("facing", 0.0), "facing", where),
        ground=ground, support=support,
        lift=_number(raw.get("lift", base.lift), "lift", where),
        on=on, offset=_vector(raw.get("offset", [0, 0, 0]), 3, "offset", where),
    )


def _angles(raw: dict, error) -> dict[str, float]:
    """Expand shorthands (``r_arm: [raise, swing, twist]``, ``elbows: 30``) to full DOF names."""
    out: dict[str, float] = {}
    names = set(body_model().dof_names)
    for key, value in raw.items():
        if key in ("arms", "legs", "r_arm", "l_arm", "r_leg", "l_leg"):
            limb = key[-4:-1] if key in ("arms", "legs") else key[2:]
            sides = SIDES if key in ("arms", "legs") else (key[0],)
            if not (isinstance(value, list) and 2 <= len(value) <= 3 and all(_is_number(v) for v in value)):
                raise error(f"{key} must be [raise, swing] or [raise, swing, twist] in degrees, got {value!r}.")
            for side in sides:
                for part, v in zip(("raise", "swing", "twist"), value):
                    out[f"{side}_{limb}_{part}"] = float(v)
        elif key in ("elbows", "knees"):
            if not _is_number(value):
                raise error(f"{key} must be a number of degrees, got {value!r}.")
            for side in SIDES:
                out[f"{side}_{key[:-1]}"] = float(value)
        elif key in names:
            if not _is_number(value):
                raise error(f"{key} must be a number of degrees, got {value!r}.")
            out[key] = float(value)
        else:
            raise error(f"unknown angle {key!r}{_suggest(key, names | _SHORTHANDS)}.")
    return out


def _parse_contact(raw: dict, k: int, n: int, where: _Where) -> ContactSpec:
    if not isinstance(raw, dict):
        raise where.error(f"contact {k}: must be a mapping like {{who: 0, hand: r, to: [1, r_wrist]}}.")
    _no_unknown(raw, _CONTACT_KEYS, f"contact {k} key", where)
    if ("hand" in raw) == ("foot" in raw):
        raise where.error(f"contact {k}: give exactly one of 'hand: r|l' or 'foot: r|l'.")
    limb, side = ("arm", raw["hand"]) if "hand" in raw else ("leg", raw["foot"])
    if side not in SIDES:
        raise where.error(f"contact {k}: side must be 'r' or 'l', got {side!r}.")
    to = raw.get("to")
    if not (isinstance(to, list) and len(to) == 2):
        raise where.error(f"contact {k}: 'to' must be [person, point], got {to!r}.")
    pole = raw.get("elbow" if limb == "arm" else "knee")
    if pole is not None and pole not in POLES:
        raise where.error(f"contact {k}: unknown direction {pole!r}; use one of {', '.join(POLES)}.")
    return ContactSpec(
        who=_person_index(raw.get("who"), n, where, f"contact {k} 'who'"), limb=limb, side=side,
        target=_person_index(to[0], n, where, f"contact {k} 'to'"), point=_point(to[1], where),
        offset=_vector(raw.get("offset", [0, 0, 0]), 3, f"contact {k} offset", where), pole=pole,
    )


def _parse_aliases(raw: object, where: _Where) -> tuple[str, ...]:
    """Other names of the action ("facepalm", "shoving someone", "princess carry"): plain phrases
    that follow the subject like a `say` phrase without placeholders."""
    if not (isinstance(raw, list) and all(isinstance(a, str) and a.strip() for a in raw)):
        raise where.error("'aliases' must be a list of phrases (other names of the action).")
    if any("{" in a for a in raw):
        raise where.error("aliases take no placeholders: write them as phrases that follow the subject.")
    return tuple(dict.fromkeys(a.strip() for a in raw))


def _parse_say(raw: object, cast: tuple[CastEntry, ...], where: _Where) -> tuple[str, ...]:
    if not (isinstance(raw, list) and len(raw) >= 3 and all(isinstance(s, str) and s.strip() for s in raw)):
        raise where.error("'say' must list at least 3 action phrases.")
    for phrase in raw:
        if "{" in phrase:
            try:
                fill_phrase(phrase, cast[0])
            except (KeyError, IndexError, AttributeError, ValueError) as exc:
                raise where.error(f"phrase {phrase!r} has a bad placeholder ({exc}); use {{all}}, {{0}}, {{1}}, {{0.poss}}.") from None
    return tuple(s.strip() for s in raw)


def fill_phrase(phrase: str, entry: CastEntry) -> str:
    """The clause a phrase makes for one cast entry: ``"{0} hugging {1}"`` or ``"<who> <phrase>"``."""
    if "{" not in phrase:
        return f"{entry.say} {phrase}"
    fields = {f for _, f, _, _ in string.Formatter().parse(phrase) if f is not None}
    for f in fields:
        root = f.split(".")[0]
        if root != "all" and not root.isdigit():
            raise KeyError(f)
        if "." in f and f.split(".", 1)[1] != "poss":
            raise AttributeError(f)
    return phrase.format(*entry.members, all=entry.say)


def _parse_places(raw: object, axes: Axes, where: _Where) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise where.error("places must be a non-empty list of place groups or phrases.")
    phrases: list[str] = []
    for item in raw:
        if item in axes.places:
            phrases += axes.places[item]
        elif isinstance(item, str) and " " in item.strip():
            phrases.append(item.strip())
        else:
            raise where.error(f"unknown place group {item!r}{_suggest(str(item), set(axes.places))}; "
                              "or write a phrase like 'on a yoga mat'.")
    return tuple(dict.fromkeys(phrases))


def _parse_views(raw: object, where: _Where) -> dict[str, float]:
    weights = {v: 1.0 for v in raw} if isinstance(raw, list) else raw
    if not isinstance(weights, dict) or not weights:
        raise where.error("views must be a list of views or a {view: weight} mapping.")
    for view, w in weights.items():
        if view not in VIEW_NAMES:
            raise where.error(f"unknown view {view!r}{_suggest(str(view), set(VIEW_NAMES))}.")
        if not _is_number(w) or w <= 0:
            raise where.error(f"view weight for {view!r} must be a positive number.")
    return {k: float(v) for k, v in weights.items()}


def _parse_preferred_view(raw: object, views: dict[str, float], where: _Where) -> str:
    """The view the action reads best from: one it is photographed from, or "" for the default order."""
    if raw in ("", None):
        return ""
    if raw not in views:
        raise where.error(f"preferred_view {raw!r} is not one of the action's views {sorted(views)}; "
                          "name one of them, or add it to views.")
    return str(raw)


def _person_index(value: object, n: int, where: _Where, what: str) -> int:
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n):
        raise where.error(f"{what} must be a person index 0 to {n - 1}, got {value!r}.")
    return value


def _point(name: object, where: _Where) -> str:
    known = set(JOINTS_3D) | set(body_model().landmarks)
    if name not in known:
        raise where.error(f"unknown body point {name!r}{_suggest(str(name), known)}.")
    return str(name)


def _vector(value: object, size: int, what: str, where: _Where) -> tuple[float, ...]:
    if not (isinstance(value, list) and len(value) == size and all(_is_number(v) for v in value)):
        raise where.error(f"{what} must be a list of {size} numbers, got {value!r}.")
    return tuple(float(v) for v in value)


def _number(value: object, what: str, where: _Where) -> float:
    if not _is_number(value):
        raise where.error(f"{what} must be a number, got {value!r}.")
    return float(value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _no_unknown(raw: dict, allowed: set[str], what: str, where: _Where) -> None:
    for key in raw:
        if key not in allowed:
            raise where.error(f"unknown {what} {key!r}{_suggest(str(key), allowed)}.")


def _swap_side(name: str) -> str:
    """``r_knee`` <-> ``l_knee``; names without a side stay."""
    if name[:2] in ("r_", "l_"):
        return ("l_" if name[0] == "r" else "r_") + name[2:]
    return name


def _suggest(word: str, options: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
