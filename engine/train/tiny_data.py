"""The tiny run's own dataset: coloured shapes as subjects, library poses as poses.

Each sample takes a skeleton scene from the pose library generator (``pose_db.library``): a
two-person handshake or a one-person taxi hail. Each person is a subject: a coloured shape
(circle, square, triangle, diamond) on white is its reference, and the target paints that shape
over the person's box on a grey canvas, so the references, the pose and the target agree the
way a real sample's do. Written in the dataset format of ``engine.train.dataset``.
"""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

from PIL import Image, ImageDraw

from engine.train.dataset import DATA_FILE
from pose_db.library.generate import generate_library
from pose_db.scene.openpose_io import write_openpose
from pose_db.scene.transforms import fit_scene

TARGET_SIZE = (64, 96)  # the library's 512 x 768 canvas, scaled down (the tiny engine works at 64 px)
REFERENCE_SIZE = 48
COLOURS = [(220, 40, 40), (40, 90, 220), (40, 170, 60), (230, 180, 30)]
SHAPES = ["circle", "square", "triangle", "diamond"]
ACTIONS = (("handshake", 2), ("hailing_taxi", 1))  # action id, people


def write_tiny_dataset(folder: str | Path, samples: int = 4, seed: int = 0) -> Path:
    """Write ``samples`` samples (alternating the actions) into ``folder``; returns the folder."""
    folder = Path(folder)
    for sub in ("images", "refs", "poses"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    per_action = -(-samples // len(ACTIONS))
    entries = {action: list(islice(generate_library(actions=[action], seed=seed, variations=per_action),
                                   per_action)) for action, _ in ACTIONS}
    lines = []
    for i in range(samples):
        action, _ = ACTIONS[i % len(ACTIONS)]
        entry = entries[action][i // len(ACTIONS)]
        scene = fit_scene(entry.scene, *TARGET_SIZE)
        subjects = [(i + k) % len(SHAPES) for k in range(len(scene.people))]
        references = []
        for k, person in enumerate(scene.people):
            person.subject = k
            name = f"{SHAPES[subjects[k]]}{k}"
            path = f"refs/{i:03d}_{k}.png"
            _reference(subjects[k]).save(folder / path)
            references.append({"image": path, "name": name})
        target = Image.new("RGB", TARGET_SIZE, (128, 128, 128))
        draw = ImageDraw.Draw(target)
        draw.rectangle([0, TARGET_SIZE[1] * 3 // 4, TARGET_SIZE[0], TARGET_SIZE[1]], fill=(90, 80, 70))
        for k, person in enumerate(scene.people):
            _shape(draw, subjects[k], person.bbox())
        target.save(folder / f"images/{i:03d}.png")
        (folder / f"poses/{i:03d}.json").write_text(json.dumps(write_openpose(scene)))
        names = " and ".join(ref["name"] for ref in references)
        lines.append({"prompt": f"{names}: {entry.prompt}", "target": f"images/{i:03d}.png",
                      "references": references, "pose": f"poses/{i:03d}.json"})
    (folder / DATA_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def _reference(subject: int) -> Image.Image:
    image = Image.new("RGB", (REFERENCE_SIZE, REFERENCE_SIZE), (255, 255, 255))
    _shape(ImageDraw.Draw(image), subject, (6, 6, REFERENCE_SIZE - 6, REFERENCE_SIZE - 6))
    return image


def _shape(draw: ImageDraw.ImageDraw, subject: int, box) -> None:
    x0, y0, x1, y1 = box
    colour, shape = COLOURS[subject % len(COLOURS)], SHAPES[subject % len(SHAPES)]
    if shape == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=colour)
    elif shape == "square":
        draw.rectangle([x0, y0, x1, y1], fill=colour)
    elif shape == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=colour)
    else:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=colour)
