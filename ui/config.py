"""The studio's settings: presets and limits read from ``presets.yaml``, plus run-time switches."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

PRESETS_PATH = Path(__file__).with_name("presets.yaml")
EXAMPLES_PATH = Path(__file__).resolve().parent.parent / "assets" / "examples" / "examples.yaml"


@dataclass(frozen=True)
class SizePreset:
    name: str
    width: int
    height: int

    @property
    def label(self) -> str:
        return f"{self.name} — {self.width}×{self.height}"


@dataclass(frozen=True)
class Defaults:
    size: str
    steps: int
    guidance: float
    binding_strength: float


@dataclass(frozen=True)
class Limits:
    """The studio's limits, exactly as ``presets.yaml`` gives them (no defaults here: the YAML
    is the one source). The prompt length and the subject count are the product's own limits,
    ``pose_db.prompt.MAX_PROMPT_CHARS`` and ``pose_db.scene.MAX_SUBJECTS``, not settings."""

    min_side: int
    max_side: int
    max_steps: int
    max_guidance: float
    max_binding_strength: float
    max_subject_name_chars: int
    retrieve_top_k: int
    library_page_size: int
    history_length: int
    max_variations: int
    max_file_size: str
    max_request_size: str
    queue_max_size: int
    retrieve_concurrency: int

    @classmethod
    def load(cls, path: str | Path = PRESETS_PATH) -> Limits:
        return Presets.load(path).limits


@dataclass(frozen=True)
class Presets:
    sizes: tuple[SizePreset, ...]
    defaults: dict[str, Defaults]
    limits: Limits

    @classmethod
    def load(cls, path: str | Path = PRESETS_PATH) -> Presets:
        data = yaml.safe_load(Path(path).read_text())
        return cls(
            sizes=tuple(SizePreset(**s) for s in data["sizes"]),
            defaults={kind: Defaults(**d) for kind, d in data["defaults"].items()},
            limits=Limits(**data["limits"]),
        )

    def size(self, name: str) -> SizePreset:
        for preset in self.sizes:
            if preset.name == name or preset.label == name:
                return preset
        raise KeyError(name)


@dataclass(frozen=True)
class Example:
    """A ready-made start: subject images with names and a prompt."""

    prompt: str
    subjects: tuple[tuple[str, str], ...]  # (image path, name)
    people: int | None = None


def load_examples(path: str | Path = EXAMPLES_PATH) -> list[Example]:
    path = Path(path)
    if not path.is_file():
        return []
    examples = []
    for item in yaml.safe_load(path.read_text()) or []:
        subjects = tuple((str(path.parent / s["image"]), s["name"]) for s in item["subjects"])
        examples.append(Example(prompt=item["prompt"], subjects=subjects,
                                people=item.get("people")))
    return examples


@dataclass
class StudioConfig:
    """What ``build_studio`` needs besides the engine and the retriever.

    Attributes:
        zero_gpu: running on a ZeroGPU Space: generation is wrapped in ``spaces.GPU`` and the
            defaults are the small "zerogpu" ones.
        gpu_duration: seconds requested from ZeroGPU per generation.
        gpu_concurrency: GPU events running at once: the number of resident engines
            (``python app.py --gpus 0,1,2,3`` gives 4); 1 for one engine and on ZeroGPU.
        presets: sizes, defaults and limits (``ui/presets.yaml``).
        examples: example subjects and prompts (``assets/examples/examples.yaml``).
        weights_help: what to tell a user who has no real engine, shown in the status line.
    """

    zero_gpu: bool = False
    gpu_duration: int = 120
    gpu_concurrency: int = 1
    presets: Presets = field(default_factory=Presets.load)
    examples: list[Example] = field(default_factory=load_examples)
    weights_help: str = ("To generate real images: run on a CUDA GPU with ~48 GB, accept the "
                         "FLUX.1-dev licence on Hugging Face, set HF_TOKEN, then "
                         "`python app.py` (see README, “Real weights”).")

    @property
    def limits(self) -> Limits:
        return self.presets.limits

    def defaults_for(self, engine_kind: str) -> Defaults:
        kind = "zerogpu" if self.zero_gpu and engine_kind == "real" else engine_kind
        return self.presets.defaults.get(kind, self.presets.defaults["real"])
