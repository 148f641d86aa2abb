"""TrainConfig: every training setting, with where its default comes from.

Sources: the ASTRA paper, section 4.1 (FLUX.1-dev, rank-512 LoRA + DSM in one stage, lr 1e-5,
batch 1, 100k steps, 8 H200) and UNO's public ``train.py`` (bytedance/UNO, ``TrainArgs`` and its
loop: same base, same UnoPE ids, same rank), where the paper is silent (loss, resolution,
optimiser, schedule). A YAML file sets any field by name (``--config train.yaml``); command-line
flags override the file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from engine.errors import EngineError
from engine.lora import ASTRA_TARGETS
from engine.settings import CLIP_VISION, FLUX_DEV


@dataclass
class TrainConfig:
    """One training run.

    Args:
        data: dataset folder holding ``train.jsonl`` (``engine.train.dataset``); None with ``tiny``.
        out: output folder: the adapter (``astra_config.json`` ...) plus ``checkpoints/``,
            ``logs/`` and ``validation/``.
        base: FLUX.1-dev hub id or local diffusers folder.
        image_encoder: CLIP vision model DSM reads (hub id or folder).
        tiny: train the tiny random engine on samples it writes itself (CPU, seconds).
        steps: optimiser steps.
        learning_rate, lr_scheduler, lr_warmup_steps: diffusers ``get_scheduler`` settings.
        batch_size: samples per process and step (one aspect bucket and reference layout per batch).
        gradient_accumulation_steps: micro-batches per optimiser step.
        optimizer: ``adamw``, ``adamw8bit`` (bitsandbytes) or ``auto`` (8-bit on CUDA when
            bitsandbytes is installed, else torch's AdamW).
        adam_betas, adam_eps, weight_decay, max_grad_norm: AdamW and gradient clipping.
        mixed_precision: accelerate's ``no`` / ``fp16`` / ``bf16`` (forced to ``no`` on CPU).
        gradient_checkpointing: recompute DiT blocks in backward (diffusers' switch).
        seed: run seed (weights of new modules, data order, noise, dropout).
        lora_rank, lora_alpha: the DiT LoRA (alpha None: scale 1).
        lora_targets: peft target regex; None: ``engine.lora.ASTRA_TARGETS`` (UNO's projections).
        init_lora: start the LoRA from UNO's ``dit_lora.safetensors`` (file, folder or hub id).
        dsm: train a DSM adapter with the LoRA (the paper's single stage).
        dsm_vision_layers: CLIP hidden states DSM reads (``DSMConfig.vision_layers``).
        dsm_timestep_offsets: timestep-dependent per-layer offsets (``DSMConfig.timestep_offsets``).
        dsm_dim, dsm_heads, dsm_layer_rank: DSM sizes (``DSMConfig``).
        resolution: training side (px) of a square bucket; other buckets keep about its area.
        pose_scale: 1 full-resolution pose tokens, 2 half-resolution (``AstraSettings.pose_scale``).
        reference_long_side, reference_long_side_multi: UNO-style reference resizing.
        max_sequence_length: T5 tokens.
        text_dropout, reference_dropout, pose_dropout: chance to train without the prompt, a
            given reference, the pose map.
        guidance: FLUX.1-dev's distilled guidance value fed while training.
        mosaic_weight: weight of the MOSAIC multi-reference disentanglement term (0 = off).
        mosaic_blocks: double-block indices whose ref->latent attention the term reads (None: the
            first quarter of the double blocks).
        checkpointing_steps, checkpoints_total_limit: accelerate state + adapter every N steps,
            keeping the newest few.
        validation_steps, validation_samples, validation_inference_steps, validation_guidance:
            validation images every N steps (0 = never) on the first samples of the dataset.
        tracker: ``csv`` (always works offline) or ``tensorboard`` (needs the package).
        cache: precompute text embeddings, VAE latents and CLIP features once (``--cache``).
        skip_invalid: train on the valid samples and list the bad ones instead of refusing.
        dataloader_num_workers: worker processes that read and resize images.
        tiny_samples: how many samples the tiny run writes.
    """

    data: str | None = None
    out: str = "astra-adapter"
    base: str = FLUX_DEV
    image_encoder: str = CLIP_VISION
    tiny: bool = False
    steps: int = 100_000  # paper 4.1: 100,000 steps (UNO's max_train_steps too)
    learning_rate: float = 1e-5  # paper 4.1 ("1075" in the text extraction is 10^-5)
    lr_scheduler: str = "constant_with_warmup"  # UNO: constant after lr_warmup_steps (see README note)
    lr_warmup_steps: int = 100  # UNO TrainArgs.lr_warmup_steps
    batch_size: int = 1  # paper 4.1 and UNO TrainArgs.batch_size
    gradient_accumulation_steps: int = 1  # UNO TrainArgs
    optimizer: str = "auto"  # issue 13: 8-bit AdamW when bitsandbytes is available; UNO: torch AdamW
    adam_betas: tuple[float, float] = (0.9, 0.999)  # UNO TrainArgs.adam_betas
    adam_eps: float = 1e-8  # UNO TrainArgs.adam_eps
    weight_decay: float = 0.01  # UNO TrainArgs.adam_weight_decay
    max_grad_norm: float = 1.0  # UNO TrainArgs.max_grad_norm
    mixed_precision: str = "bf16"  # UNO TrainArgs.mixed_precision
    gradient_checkpointing: bool = True  # UNO TrainArgs.gradient_checkpoint
    seed: int = 42  # UNO TrainArgs.seed
    lora_rank: int = 512  # paper 4.1 and UNO TrainArgs.lora_rank
    lora_alpha: float | None = None  # UNO: network_alpha None, i.e. scale 1
    lora_targets: str | None = None  # None: ASTRA_TARGETS, every double/single block projection (UNO's)
    init_lora: str | None = None  # e.g. "bytedance-research/UNO": its reference half is trained
    dsm: bool = True  # paper 3.2: LoRA and DSM trained together in one stage
    # Paper 3.2 says "intermediate layers" of CLIP without indices. Our choice: the penultimate
    # hidden state (IP-Adapter Plus's) and two evenly spaced earlier ones of ViT-L/14's 24.
    dsm_vision_layers: tuple[int, ...] = (-2, -9, -16)
    dsm_timestep_offsets: bool = False  # issue 13: off by default
    dsm_dim: int = 768  # DSMConfig default (engine.dsm)
    dsm_heads: int = 12  # DSMConfig default
    dsm_layer_rank: int = 64  # DSMConfig default
    resolution: int = 512  # UNO TrainArgs.resolution (the paper gives none)
    pose_scale: int = 1  # AstraSettings default: full-resolution pose tokens (paper: native RoPE per patch)
    reference_long_side: int = 512  # UNO preprocess_ref: 512 for one reference
    reference_long_side_multi: int = 320  # UNO preprocess_ref: 320 for several
    max_sequence_length: int = 512  # FLUX.1-dev's T5 length (UNO load_t5(max_length=512))
    text_dropout: float = 0.1  # UNO TrainArgs.text_dropout (prompt replaced by "")
    # Ours (neither paper nor UNO drops them): the studio generates without a pose when RAG-Pose
    # finds none (DESIGN 1, step 3) and with fewer subjects than trained with.
    reference_dropout: float = 0.05
    pose_dropout: float = 0.1
    guidance: float = 1.0  # UNO train loop: guidance_vec = 1
    mosaic_weight: float = 0.0  # off by default (issue 13); MOSAIC eq. 15 used beta = 0.6
    mosaic_blocks: tuple[int, ...] | None = None  # MOSAIC A.1.6: early blocks work best
    checkpointing_steps: int = 1000  # UNO TrainArgs.checkpointing_steps
    checkpoints_total_limit: int = 3  # ours: a rank-512 checkpoint with optimiser state is ~15 GB
    validation_steps: int = 1000  # UNO validates at every checkpoint
    validation_samples: int = 2  # ours
    validation_inference_steps: int = 25  # UNO inference(): num_steps = 25
    validation_guidance: float = 4.0  # UNO inference(): guidance = 4
    tracker: str = "csv"  # ours: accelerate's trackers all need a package; CSV needs none
    cache: bool = False
    skip_invalid: bool = False
    dataloader_num_workers: int = 0
    tiny_samples: int = 4

    def __post_init__(self) -> None:
        self.adam_betas = tuple(float(b) for b in self.adam_betas)
        self.dsm_vision_layers = tuple(int(i) for i in self.dsm_vision_layers)
        if self.mosaic_blocks is not None:
            self.mosaic_blocks = tuple(int(i) for i in self.mosaic_blocks)
        problems = []
        if self.steps < 1:
            problems.append(f"steps must be at least 1, got {self.steps}")
        if self.batch_size < 1 or self.gradient_accumulation_steps < 1:
            problems.append("batch_size and gradient_accumulation_steps must be at least 1")
        for name in ("text_dropout", "reference_dropout", "pose_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.optimizer not in ("auto", "adamw", "adamw8bit"):
            problems.append(f"optimizer must be auto, adamw or adamw8bit, got {self.optimizer!r}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            problems.append(f"mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")
        if self.tracker not in ("csv", "tensorboard"):
            problems.append(f"tracker must be csv or tensorboard, got {self.tracker!r}")
        if self.pose_scale not in (1, 2):
            problems.append(f"pose_scale must be 1 or 2, got {self.pose_scale}")
        if self.mosaic_weight < 0:
            problems.append(f"mosaic_weight must be >= 0, got {self.mosaic_weight}")
        if not self.tiny and not self.data:
            problems.append("give --data DIR (a folder with train.jsonl) or --tiny")
        if problems:
            raise EngineError("Invalid training config: " + "; ".join(problems) + ".")

    @classmethod
    def tiny_defaults(cls, **overrides: Any) -> TrainConfig:
        """Settings for the tiny CPU run (``--tiny``): small rank, a high learning rate so a few
        dozen steps show learning, fp32, no checkpointing of activations, 64 px, no dropout.

        The tiny base is random, not pretrained: its frozen output head (``norm_out``'s timestep
        modulation and ``proj_out``) fixes the output scale per timestep at random, which the
        block LoRA alone cannot undo in a few dozen steps. The tiny run therefore also adapts
        those two layers; at FLUX size the targets stay UNO's (``lora_targets: null``).
        """
        values = dict(tiny=True, steps=40, learning_rate=1e-2, lr_warmup_steps=0, lora_rank=16,
                      lora_targets=ASTRA_TARGETS + r"|norm_out\.linear|proj_out",
                      text_dropout=0.0, reference_dropout=0.0, pose_dropout=0.0,
                      dsm_vision_layers=(-2, -1), dsm_dim=32, dsm_heads=4, dsm_layer_rank=8,
                      mixed_precision="no", gradient_checkpointing=False, resolution=64,
                      reference_long_side=64, reference_long_side_multi=32, max_sequence_length=32,
                      checkpointing_steps=0, validation_steps=0, validation_inference_steps=4,
                      optimizer="adamw")
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a YAML mapping of field names (unknown names are refused), then apply ``overrides``."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise EngineError(f"Cannot read the training config {path}: {error}") from error
        if not isinstance(data, dict):
            raise EngineError(f"{path} must be a YAML mapping of setting: value.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise EngineError(f"{path}: unknown setting(s) {', '.join(unknown)}; see engine/train/config.py.")
        data.update(overrides)
        base = cls.tiny_defaults(**data) if data.get("tiny") else cls(**data)
        return base

    def to_dict(self) -> dict:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data
