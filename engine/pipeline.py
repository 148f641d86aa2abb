"""AstraPipeline: FLUX.1-dev with ASTRA's conditioning, diffusers style.

It is a stock ``FluxPipeline`` (same text encoders, VAE, transformer, flow-matching schedule
and distilled guidance) plus what ASTRA adds (paper section 3.2):

1. references and the pose map as clean tokens after the latent (``engine.conditioning``),
2. EURoPE position ids for that stream (``engine.europe``),
3. DSM offsets on the text condition from CLIP-vision features (``engine.dsm``),
4. LoRA on the DiT (``engine.lora``, loaded with the adapter),

and, beyond the paper, subject-to-skeleton binding (``engine.binding``).

    from engine import AstraPipeline
    pipe = AstraPipeline.from_pretrained(adapter="path/or/repo").to("cuda")
    image = pipe("Mia and Leo shaking hands", subjects=[mia, leo], subject_names=["Mia", "Leo"],
                 pose=openpose_json).images[0]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import os

import numpy as np
import torch
from diffusers import FluxPipeline
from diffusers.pipelines.flux.pipeline_flux import calculate_shift, retrieve_timesteps
from diffusers.utils import BaseOutput
from PIL import Image
from pose_db.scene import PoseScene
from pose_db.transforms import fit_scene

from engine import inputs
from engine.binding import REGION_DILATE, name_binding_bias, name_token_mask, region_attention_bias, subject_regions
from engine.conditioning import (
    Conditions,
    ReferenceSizes,
    encode_conditions,
    pose_map_image,
    resize_reference,
    vision_states,
)
from engine.dsm import DisentangledSemanticModulation
from engine.errors import EngineError, GenerationCancelled
from engine.transformer import astra_forward, dit_blocks, modulate_text_stream

FLUX_DEV = "black-forest-labs/FLUX.1-dev"
CLIP_VISION = "openai/clip-vit-large-patch14"
TINY_MESSAGE = "tiny engine: untrained random weights, images are noise"

StepCallback = Callable[[Any, int, torch.Tensor, dict], dict]


@dataclass
class AstraPipelineOutput(BaseOutput):
    """Generated images (PIL), and whether they came from the tiny engine (then they are noise)."""

    images: list[Image.Image]
    is_tiny: bool = False
    message: str = ""


@dataclass(frozen=True)
class AstraSettings:
    """Per-engine ASTRA settings (stored with an adapter).

    Args:
        references: UNO-style reference long sides (one / several references).
        pose_scale: 1 for a full-resolution pose map, 2 for half-resolution compact tokens.
        max_sequence_length: T5 tokens (FLUX.1-dev: 512).
        region_dilate: how far a subject's region grows around its skeleton's box (share of its side).
    """

    references: ReferenceSizes = field(default_factory=ReferenceSizes)
    pose_scale: int = 1
    max_sequence_length: int = 512
    region_dilate: float = REGION_DILATE


class AstraPipeline(FluxPipeline):
    """FLUX.1-dev + EURoPE + DSM + LoRA. See the module docstring; build it with
    :meth:`from_pretrained` (real weights) or :meth:`tiny` (random small weights, CPU).

    Cancelling: a ``callback_on_step_end`` may set ``pipe.interrupt = True`` (or raise
    :class:`~engine.errors.GenerationCancelled`); the call then stops before the next step and
    raises ``GenerationCancelled``. Nothing is decoded and the pipeline stays usable.
    """

    model_cpu_offload_seq = "text_encoder->text_encoder_2->image_encoder->dsm->transformer->vae"
    _optional_components = ["image_encoder", "feature_extractor", "dsm"]

    def __init__(self, scheduler, vae, text_encoder, tokenizer, text_encoder_2, tokenizer_2, transformer,
                 image_encoder=None, feature_extractor=None, dsm: DisentangledSemanticModulation | None = None,
                 settings: AstraSettings | None = None, is_tiny: bool = False) -> None:
        super().__init__(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                         text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, transformer=transformer,
                         image_encoder=image_encoder, feature_extractor=feature_extractor)
        self.register_modules(dsm=dsm)
        self.settings = settings or AstraSettings()
        self.is_tiny = is_tiny
        self._interrupt = False
        _check_dsm_fits(dsm, transformer, image_encoder)

    # ----------------------------------------------------------------------------- construction

    @classmethod
    def from_pretrained(cls, base: str = FLUX_DEV, adapter: str | None = None, *,
                        image_encoder: str | None = CLIP_VISION, dtype: torch.dtype | None = None,
                        torch_dtype: torch.dtype | None = None, fuse_lora: bool = False, token: str | None = None,
                        adapter_revision: str | None = None, local_files_only: bool = False,
                        **flux_kwargs: Any) -> AstraPipeline:
        """Load FLUX (hub id or local folder), an ASTRA adapter and the CLIP vision encoder DSM reads.

            pipe = AstraPipeline.from_pretrained("black-forest-labs/FLUX.1-dev", adapter="you/astra-adapter",
                                                 dtype=torch.bfloat16).to("cuda")

        Args:
            base: FLUX.1-dev hub id or a local diffusers folder (gated on the hub: accept its
                licence and set ``HF_TOKEN``).
            adapter: ASTRA adapter folder or hub repo (``astra_config.json``, LoRA, DSM), or None
                for plain FLUX with EURoPE conditioning and no DSM.
            image_encoder: CLIP vision model (hub id or folder) for DSM's features; only loaded
                when the adapter has a DSM.
            dtype: weights dtype (default bf16, for GPUs); ``torch_dtype`` is the older name.
            fuse_lora: merge the LoRA into the base weights (faster; no longer removable).
            token: hub token; default: the ``HF_TOKEN`` environment variable.
            adapter_revision: hub branch, tag or commit of the adapter.
            local_files_only: never touch the network (hub cache or folders only).
            flux_kwargs: passed to ``FluxPipeline.from_pretrained`` (``revision``, ``variant``...).
        """
        dtype = dtype or torch_dtype or torch.bfloat16
        token = token or os.environ.get("HF_TOKEN") or None
        hub = dict(token=token, local_files_only=local_files_only)
        flux = _load("base model", base, lambda: FluxPipeline.from_pretrained(base, dtype=dtype, **hub, **flux_kwargs))
        components = {k: v for k, v in flux.components.items() if k not in ("image_encoder", "feature_extractor")}
        dsm, settings = None, AstraSettings()
        if adapter is not None:
            dsm, settings = _load_adapter(adapter, components["transformer"], dtype, fuse_lora,
                                          revision=adapter_revision, **hub)
        vision = processor = None
        if dsm is not None:
            if image_encoder is None:
                raise EngineError("This adapter has a DSM, which needs a CLIP vision encoder; pass image_encoder= "
                                  f"(e.g. {CLIP_VISION!r} or a local folder).")
            from transformers import CLIPImageProcessor, CLIPVisionModel

            vision = _load("CLIP vision encoder", image_encoder, lambda: CLIPVisionModel.from_pretrained(
                image_encoder, dtype=dtype, **hub))
            processor = _load("CLIP image processor", image_encoder,
                              lambda: CLIPImageProcessor.from_pretrained(image_encoder, **hub))
        return cls(**components, image_encoder=vision, feature_extractor=processor, dsm=dsm, settings=settings)

    @classmethod
    def tiny(cls, seed: int = 0) -> AstraPipeline:
        """Every component from small configs with random weights (CPU, seconds). Images are noise."""
        from engine.tiny import REFERENCE_SIZES, TEXT_TOKENS, tiny_components

        settings = AstraSettings(references=REFERENCE_SIZES, max_sequence_length=TEXT_TOKENS)
        pipe = cls(**tiny_components(seed), settings=settings, is_tiny=True)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    # ----------------------------------------------------------------------------- state

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    @interrupt.setter
    def interrupt(self, value: bool) -> None:
        self._interrupt = bool(value)

    @property
    def token_px(self) -> int:
        """Pixels per packed token side: VAE downscale x 2x2 packing (16 for FLUX)."""
        return self.vae_scale_factor * 2

    @property
    def max_subjects(self) -> int:
        return self.dsm.config.max_subjects if self.dsm is not None else inputs.MAX_SUBJECTS

    # ----------------------------------------------------------------------------- checks

    def check_inputs(self, prompt: str, subjects: list, subject_names: list[str | None] | None,
                     pose: dict | PoseScene | None, height: int, width: int, num_inference_steps: int,
                     guidance_scale: float, seed: int, binding_strength: float,
                     callback_on_step_end: StepCallback | None = None, output_type: str = "pil") -> None:
        """Validate everything before any model runs; raises ``EngineError`` saying what to fix."""
        inputs.check_prompt(prompt)
        inputs.check_size(height, width, self.token_px * self.settings.pose_scale if pose is not None
                          else self.token_px)
        inputs.check_subjects(subjects, subject_names, self.max_subjects)
        inputs.check_pose_subjects(inputs.read_pose(pose), len(subjects))
        inputs.check_settings(num_inference_steps, guidance_scale, seed, binding_strength, callback_on_step_end)
        inputs.check_output_type(output_type)

    # ----------------------------------------------------------------------------- generation

    @torch.no_grad()
    def __call__(self, prompt: str, subjects: list[Image.Image] | None = None,
                 subject_names: list[str | None] | None = None, pose: dict | PoseScene | None = None,
                 height: int = 1024, width: int = 1024, num_inference_steps: int = 28,
                 guidance_scale: float = 3.5, seed: int = 0, binding_strength: float = 1.0,
                 callback_on_step_end: StepCallback | None = None, output_type: str = "pil",
                 ) -> AstraPipelineOutput:
        """Generate one image.

        Args:
            prompt: the scene description.
            subjects: 0 to 4 reference images (PIL); subject k is index k in the pose.
            subject_names: one name per subject (or None); its mentions in the prompt are bound
                to that subject's reference inside DSM.
            pose: OpenPose JSON (dict or text; a person's ``"subject"`` assigns it) or a
                ``PoseScene``, or None for text-only pose. Fitted to the output size.
            height, width: output size, multiples of 16 (of 32 with a half-resolution pose map).
            num_inference_steps: flow-matching Euler steps.
            guidance_scale: FLUX.1-dev's embedded guidance (one forward per step, no CFG).
            seed: initial-noise seed (a CPU generator: same seed, same noise on any device).
            binding_strength: subject-to-skeleton binding, 0 = off.
            callback_on_step_end: ``f(pipe, step, timestep, callback_kwargs) -> dict`` after each
                step; ``callback_kwargs`` holds ``latents``; returning ``{"latents": ...}``
                replaces them. Set ``pipe.interrupt = True`` to cancel.
            output_type: ``"pil"``, ``"np"``, ``"pt"`` or ``"latent"`` (packed latent tokens).
        """
        subjects = [] if subjects is None else subjects
        subject_names = subject_names or None  # an empty list means "no names"
        self.check_inputs(prompt, subjects, subject_names, pose, height, width, num_inference_steps,
                          guidance_scale, seed, binding_strength, callback_on_step_end, output_type)
        subjects = [image.convert("RGB") for image in subjects]  # RGBA, L, P, CMYK... all encode as RGB
        self._interrupt = False
        device, dtype = self._execution_device, self.transformer.dtype
        latent_hw = (height // self.token_px, width // self.token_px)
        scene = inputs.read_pose(pose)
        scene = fit_scene(scene, width, height) if scene is not None else None

        prompt_embeds, pooled, text_ids = self.encode_prompt(
            prompt=prompt, device=device, max_sequence_length=self.settings.max_sequence_length)
        conditions = self._encode_conditions(subjects, scene, latent_hw)
        img_ids = conditions.layout.position_ids().to(device)
        txt_ids = text_ids.to(device=device, dtype=img_ids.dtype)
        # DSM and the binding bias depend on text and references only: computed once, not per step.
        prompt_embeds, layer_offsets = self._semantic_modulation(
            prompt, prompt_embeds, subjects, subject_names, binding_strength)
        bias = region_attention_bias(conditions.layout, prompt_embeds.shape[1],
                                     subject_regions(scene, latent_hw, self.settings.region_dilate),
                                     binding_strength, device=device, dtype=dtype)
        tokens = conditions.tokens.to(device=device, dtype=dtype) if conditions.tokens is not None else None

        generator = torch.Generator("cpu").manual_seed(seed)
        latents, _ = self.prepare_latents(1, self.transformer.config.in_channels // 4, height, width,
                                          prompt_embeds.dtype, device, generator)
        timesteps = self._timesteps(num_inference_steps, conditions.layout.num_latent, device)
        guidance = (torch.full((1,), float(guidance_scale), device=device, dtype=torch.float32)
                    if self.transformer.config.guidance_embeds else None)

        # As stock FLUX: a fixed begin index avoids a device-to-host sync per step (and helps compile).
        self.scheduler.set_begin_index(0)
        with modulate_text_stream(self.transformer, layer_offsets), self.progress_bar(total=len(timesteps)) as bar:
            for step, t in enumerate(timesteps):
                if self.interrupt:
                    raise GenerationCancelled()
                self._current_timestep = t
                with self.transformer.cache_context("cond"):
                    velocity = astra_forward(
                        self.transformer, latents, conditions=tokens, encoder_hidden_states=prompt_embeds,
                        pooled_projections=pooled, timestep=t.expand(1).to(latents.dtype) / 1000,
                        img_ids=img_ids, txt_ids=txt_ids, guidance=guidance, attention_bias=bias)
                latents = self.scheduler.step(velocity, t, latents, return_dict=False)[0]
                if callback_on_step_end is not None:
                    outputs = callback_on_step_end(self, step, t, {"latents": latents}) or {}
                    latents = outputs.pop("latents", latents)
                bar.update()
        self._current_timestep = None
        if self.interrupt:
            raise GenerationCancelled()
        return AstraPipelineOutput(images=self._decode(latents, height, width, output_type), is_tiny=self.is_tiny,
                                   message=TINY_MESSAGE if self.is_tiny else "")

    # ----------------------------------------------------------------------------- steps of a call

    def _encode_conditions(self, subjects: list[Image.Image], scene: PoseScene | None,
                           latent_hw: tuple[int, int]) -> Conditions:
        long_side = self.settings.references.for_count(len(subjects))
        references = [resize_reference(image, long_side, self.token_px) for image in subjects]
        pose_map = (pose_map_image(scene, latent_hw, self.settings.pose_scale, self.token_px)
                    if scene is not None else None)
        return encode_conditions(self.vae, references, pose_map, latent_hw, self.settings.pose_scale)

    def _semantic_modulation(self, prompt: str, prompt_embeds: torch.Tensor, subjects: list[Image.Image],
                             subject_names: list[str | None] | None,
                             binding_strength: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        """E' = E + dE (eq. 8) and the per-layer offsets; unchanged without DSM or references."""
        if self.dsm is None or self.image_encoder is None or not subjects:
            return prompt_embeds, None
        dsm_dtype = self.dsm.dtype
        features = vision_states(self.image_encoder, self.feature_extractor, subjects, self.dsm.config.vision_layer)
        names = subject_names or [None] * len(subjects)
        bias = name_binding_bias(self._name_mask(prompt, names), binding_strength)
        offsets = self.dsm(prompt_embeds.to(dsm_dtype), features.to(dsm_dtype),
                           bias.to(prompt_embeds.device) if bias is not None else None)
        layer_offsets = offsets.layer_offsets.to(self.transformer.dtype)
        return prompt_embeds + offsets.global_offset.to(prompt_embeds.dtype), layer_offsets

    def _name_mask(self, prompt: str, names: list[str | None]) -> np.ndarray:
        """(T, N) which T5 tokens spell which subject's name (tokenised as ``encode_prompt`` does)."""
        length = self.settings.max_sequence_length
        if not any(names) or not getattr(self.tokenizer_2, "is_fast", False):
            return np.zeros((length, len(names)), dtype=bool)
        encoded = self.tokenizer_2(prompt, padding="max_length", max_length=length, truncation=True,
                                   return_offsets_mapping=True)
        return name_token_mask(prompt, names, encoded["offset_mapping"])

    def _timesteps(self, num_inference_steps: int, num_latent_tokens: int, device: torch.device) -> torch.Tensor:
        """FLUX's schedule: resolution shift from the latent tokens only (conditions excluded)."""
        config = self.scheduler.config
        mu = calculate_shift(num_latent_tokens, config.get("base_image_seq_len", 256),
                             config.get("max_image_seq_len", 4096), config.get("base_shift", 0.5),
                             config.get("max_shift", 1.15))
        sigmas = np.linspace(1.0, 1 / num_inference_steps, num_inference_steps)
        if config.get("use_flow_sigmas", False):
            sigmas = None
        timesteps, _ = retrieve_timesteps(self.scheduler, num_inference_steps, device, sigmas=sigmas, mu=mu)
        self._num_timesteps = len(timesteps)
        return timesteps

    def _decode(self, latents: torch.Tensor, height: int, width: int, output_type: str) -> list:
        if output_type == "latent":
            return list(latents)
        latents = self._unpack_latents(latents, height, width, self.vae_scale_factor)
        latents = latents / self.vae.config.scaling_factor + self.vae.config.shift_factor
        image = self.vae.decode(latents.to(self.vae.dtype), return_dict=False)[0]
        return self.image_processor.postprocess(image, output_type=output_type)


def _load_adapter(adapter: str, transformer, dtype: torch.dtype, fuse_lora: bool, *,
                  token: str | None = None, revision: str | None = None, local_files_only: bool = False,
                  ) -> tuple[DisentangledSemanticModulation | None, AstraSettings]:
    """Apply an ASTRA adapter's LoRA to ``transformer`` and build its DSM (``engine.checkpoint``
    reads the folder or hub repo, ``engine.lora`` applies the peft LoRA)."""
    from engine.checkpoint import build_dsm, load_adapter
    from engine.lora import apply_lora_state
    from engine.lora import fuse_lora as fuse

    config, lora_state, dsm_state = load_adapter(adapter, token=token, revision=revision,
                                                 local_files_only=local_files_only)
    if lora_state:
        apply_lora_state(transformer, config.lora, lora_state)
        if fuse_lora:
            fuse(transformer)
    dsm = build_dsm(config, dsm_state)
    if dsm is not None:
        dsm.to(device=transformer.device, dtype=dtype).eval()
    return dsm, config.settings


def _load(what: str, source: str, load: Callable[[], Any]) -> Any:
    """Run a hub/folder load; failures become one EngineError that says what to do."""
    try:
        return load()
    except EngineError:
        raise
    except Exception as error:  # hub, network, disk and format errors share no base class
        text = f"{type(error).__name__}: {error}"
        hint = "check the hub id or folder path"
        if "gated" in text.lower() or "401" in text or "403" in text:
            hint = "accept the model's licence on huggingface.co and set HF_TOKEN"
        elif "offline" in text.lower() or "connect" in text.lower() or "local_files_only" in text:
            hint = "download it first (`hf download ID --local-dir DIR`) and pass the folder"
        raise EngineError(f"Could not load the {what} from {source!r}; {hint}. ({text.splitlines()[0][:300]})") \
            from error


def _check_dsm_fits(dsm: DisentangledSemanticModulation | None, transformer, image_encoder) -> None:
    """A DSM built for another base model or vision encoder is refused at load, not mid-generation."""
    if dsm is None:
        return
    c = dsm.config
    expected = {"text_dim": transformer.config.joint_attention_dim, "inner_dim": transformer.inner_dim,
                "num_layers": len(dit_blocks(transformer))}
    if image_encoder is not None:
        expected["vision_dim"] = image_encoder.config.hidden_size
    wrong = [f"{k} {getattr(c, k)} (needs {v})" for k, v in expected.items() if getattr(c, k) != v]
    if wrong:
        raise EngineError(f"The DSM adapter does not fit this base model / vision encoder: {', '.join(wrong)}; "
                          "use the base and CLIP encoder it was trained with.")
