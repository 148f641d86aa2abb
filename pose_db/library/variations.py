"""Prompt variations along the paper's descriptive axes, each paired with its own pose.

ASTRA's database has ~30 prompts per action, made by varying subject attributes (age, build),
action nuance, environment and camera perspective. Here each variation also varies the pose
it is linked to: the cast fixes the body profiles, the camera words name the view the skeleton
is photographed from, and a small joint jitter makes every skeleton its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .rig.camera import view_specs
from .rig.skeleton3d import body_model
from .specs import ActionSpec, Axes, CastEntry, fill_phrase

# Per-variation body jitter: each bone length is scaled by about this relative spread.
_BONE_SPREAD = 0.025
_BONE_CLIP = 0.06
# Sentence shapes: c = who + action clause, p = place, a = camera phrase (after), b = camera
# phrase (before), f = framing phrase. Every shape names the view.
_SHAPES = (
    "{c} {p}, {a}",
    "{B} {c} {p}",
    "{c}, {a}, {p}",
    "{c}, {a}",
    "{B} {c}",
    "{c} {p}, {f}, {a}",
)
_MEDIUM_SHAPES = ("{F} of {c} {p}, {a}", "{c} {p}, {f}, {a}", "{B} {c}, {f}")


@dataclass(frozen=True)
class Variation:
    """One prompt and the choices its pose is made with."""

    k: int
    prompt: str
    cast: CastEntry
    view: str
    side: int                       # +1 / -1: which side a mirrored view is taken from
    view_jitter: tuple[float, float]
    framing: str
    mirror: bool                    # stage the action's mirror image
    jitter: list[dict[str, float]]  # per person, degrees added to angles
    bone_scale: list[dict[str, float]]  # per person, bone length factors


def action_rng(action_id: str, seed: int) -> np.random.Generator:
    """A generator seeded from the action id and the seed (stable across runs and machines)."""
    digest = hashlib.sha256(f"{seed}:{action_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def variations(action: ActionSpec, axes: Axes, seed: int = 0) -> Iterator[Variation]:
    """An endless, deterministic stream of variations of ``action``.

    Phrases, cast entries, places and views are dealt like shuffled decks, so the first 30
    variations cover each axis evenly instead of repeating a lucky draw.
    """
    rng = action_rng(action.id, seed)
    casts = _Deck(axes.casts[action.cast], rng)
    phrases = _Deck(action.say, rng)
    places = _Deck(action.places, rng)
    views = _Deck(_weighted_views(action.views), rng)
    framings = _Deck(_weighted_framings(action.framing), rng)
    k = 0
    while True:
        cast, phrase, place, view, framing = casts.draw(), phrases.draw(), places.draw(), views.draw(), framings.draw()
        spec = view_specs()[view]
        side = int(rng.choice((-1, 1))) if spec.mirror else 1
        view_jitter = (float(rng.uniform(-spec.spread, spec.spread)), float(rng.uniform(-spec.spread, spec.spread) / 2))
        mirror = bool(action.mirror and rng.random() < 0.5)
        jitter = [_angle_jitter(rng, action.jitter) for _ in action.people]
        bones = [_bone_scale(rng) for _ in action.people]
        prompt = _sentence(rng, fill_phrase(phrase, cast), place, view, framing, axes)
        yield Variation(k=k, prompt=prompt, cast=cast, view=view, side=side, view_jitter=view_jitter,
                        framing=framing, mirror=mirror, jitter=jitter, bone_scale=bones)
        k += 1


def _sentence(rng: np.random.Generator, clause: str, place: str, view: str, framing: str, axes: Axes) -> str:
    shapes = _MEDIUM_SHAPES if framing == "medium" else _SHAPES
    shape = shapes[int(rng.integers(len(shapes)))]
    before = str(rng.choice(axes.view_before[view]))
    frame = str(rng.choice(axes.framings[framing]))
    text = shape.format(c=clause, p=place, a=str(rng.choice(axes.view_after[view])), B=before,
                        f=frame, F=frame[0].upper() + frame[1:])
    return " ".join(text.split())


def _angle_jitter(rng: np.random.Generator, scale: float) -> dict[str, float]:
    if scale <= 0:
        return {}
    model = body_model()
    return {name: float(rng.normal(0.0, spec.jitter * scale)) for name, spec in model.dofs.items()}


def _bone_scale(rng: np.random.Generator) -> dict[str, float]:
    keys = ("torso", "hip", "shoulder", "upper_arm", "forearm", "thigh", "shin")
    return {k: 1.0 + min(max(float(rng.normal(0, _BONE_SPREAD)), -_BONE_CLIP), _BONE_CLIP) for k in keys}


def _weighted_views(weights: dict[str, float]) -> list[str]:
    """A deck of ~12 cards in which each view appears in proportion to its weight."""
    total = sum(weights.values())
    return [v for v, w in weights.items() for _ in range(max(1, round(12 * w / total)))]


def _weighted_framings(framings: tuple[str, ...]) -> list[str]:
    # Waist-up shots are a minority: the full body is what a pose library is for.
    return ["full"] * 3 + ["medium"] if "medium" in framings else ["full"]


class _Deck:
    """Deal items in shuffled rounds: every item once per round, in a fresh order each round."""

    def __init__(self, items, rng: np.random.Generator):
        self._items = list(items)
        self._rng = rng
        self._order: list[int] = []

    def draw(self):
        if not self._order:
            self._order = list(self._rng.permutation(len(self._items)))
        return self._items[self._order.pop()]
