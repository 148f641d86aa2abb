"""A result's recipe, carried inside its PNG as text chunks.

Every image the studio returns is a PNG (never Gradio's default lossy WebP) whose text chunks
hold what made it: prompt, seed, settings, the OpenPose JSON with its subject assignment, and
the subject names. Dropping the PNG back into the studio restores all of it. PIL and
pose_db's OpenPose reader only.

Chunks written:
    ``astra:recipe``  JSON of the whole ``Recipe`` (compressed iTXt) — what ``read_recipe`` reads
    ``prompt``        the prompt, for image viewers that show text chunks
    ``pose``          the OpenPose JSON alone, so ControlNet tools can pick it up
    ``Software``      "ASTRA Studio"
"""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from PIL import Image, PngImagePlugin

from pose_db.scene.model import PoseError
from pose_db.scene.openpose_io import read_openpose

RECIPE_KEY = "astra:recipe"
RECIPE_VERSION = 1
MAX_SEED = 2**31 - 1  # the largest seed the studio uses or writes


class RecipeError(ValueError):
    """A PNG without a readable recipe; the message says what to do."""


@dataclass
class Recipe:
    """Everything needed to make an image again (the subject images themselves excepted)."""

    prompt: str
    seed: int
    width: int
    height: int
    num_inference_steps: int
    guidance_scale: float
    binding_strength: float
    subject_names: list[str] = field(default_factory=list)
    pose: dict | None = None
    engine: str = ""
    version: int = RECIPE_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict) -> Recipe:
        """Build from a decoded dict, checking types so a hand-edited chunk fails clearly."""
        if not isinstance(data, dict):
            raise RecipeError("The recipe in this PNG is not a JSON object.")
        known = {f.name for f in fields(cls)}
        missing = [name for name in ("prompt", "seed", "width", "height") if name not in data]
        if missing:
            raise RecipeError(f"The recipe in this PNG lacks {', '.join(missing)}; it was not "
                              f"written by ASTRA Studio or was edited.")
        values = {k: v for k, v in data.items() if k in known}
        try:
            recipe = cls(
                prompt=str(values["prompt"]),
                seed=int(values["seed"]),
                width=int(values["width"]),
                height=int(values["height"]),
                num_inference_steps=int(values.get("num_inference_steps", 28)),
                guidance_scale=float(values.get("guidance_scale", 3.5)),
                binding_strength=float(values.get("binding_strength", 1.0)),
                subject_names=[str(n) for n in values.get("subject_names") or []],
                pose=values.get("pose"),
                engine=str(values.get("engine", "")),
                version=int(values.get("version", RECIPE_VERSION)),
            )
        except (TypeError, ValueError, OverflowError) as err:
            raise RecipeError(f"The recipe in this PNG has a malformed value ({err}).") from err
        if recipe.pose is not None and not isinstance(recipe.pose, dict):
            raise RecipeError("The pose stored in this PNG is not an OpenPose JSON object.")
        if recipe.pose is not None:
            try:  # checks depth and size too, so a hostile pose is never handed on
                read_openpose(recipe.pose)
            except PoseError as err:
                raise RecipeError(f"The pose stored in this PNG is not valid OpenPose ({err}).") from err
        # Whole numbers the studio writes are 0..MAX_SEED and its floats are finite; anything
        # else was edited in (and 2**64 cannot even be sent back as JSON).
        for name in ("seed", "width", "height", "num_inference_steps", "version"):
            if not 0 <= getattr(recipe, name) <= MAX_SEED:
                raise RecipeError(f"The recipe in this PNG has an impossible {name} "
                                  f"({getattr(recipe, name)}); it was edited. Use a PNG the studio saved.")
        for name in ("guidance_scale", "binding_strength"):
            if not math.isfinite(getattr(recipe, name)):
                raise RecipeError(f"The recipe in this PNG has an impossible {name} "
                                  f"({getattr(recipe, name)}); it was edited. Use a PNG the studio saved.")
        return recipe


def encode_png(image: Image.Image, recipe: Recipe) -> bytes:
    """The image as PNG bytes with ``recipe`` in its text chunks."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt(RECIPE_KEY, recipe.to_json(), zip=True)
    info.add_itxt("prompt", recipe.prompt)
    if recipe.pose is not None:
        info.add_itxt("pose", json.dumps(recipe.pose, separators=(",", ":")), zip=True)
    info.add_text("Software", "ASTRA Studio")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def write_png(image: Image.Image, recipe: Recipe, path: str | os.PathLike) -> Path:
    """Write the PNG atomically (temp file + rename) so a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(encode_png(image, recipe))
    os.replace(tmp, path)
    return path


def read_recipe(source: str | os.PathLike | bytes | Image.Image) -> Recipe:
    """The recipe stored in a PNG written by ``encode_png``/``write_png``."""
    if isinstance(source, Image.Image):
        chunks = dict(getattr(source, "text", {}) or source.info)
    else:
        data = source if isinstance(source, bytes) else _read(source)
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.format != "PNG":
                    raise RecipeError(f"This is a {image.format} file; recipes live only in the "
                                      f"PNGs the studio saves. Upload one of those.")
                chunks = dict(image.text)
        except RecipeError:
            raise
        except Exception as err:  # PIL raises many types for non-images
            raise RecipeError("This file is not a readable PNG. Upload a PNG saved by the "
                              "studio.") from err
    if RECIPE_KEY not in chunks:
        raise RecipeError("This PNG carries no ASTRA recipe. Upload a PNG downloaded from the "
                          "studio's results.")
    try:
        data = json.loads(chunks[RECIPE_KEY])
    except json.JSONDecodeError as err:
        raise RecipeError(f"The recipe in this PNG is not valid JSON ({err.msg}).") from err
    except RecursionError:
        raise RecipeError("The recipe in this PNG is nested too deeply to be a studio recipe; "
                          "it was edited. Use a PNG the studio saved.") from None
    return Recipe.from_dict(data)


def _read(path) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise RecipeError("The PNG file could not be found. Upload it again.")
    return path.read_bytes()
