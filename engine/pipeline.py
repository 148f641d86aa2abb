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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from diffusers import FluxControlNetModel, FluxPipeline
from diffusers.pipelines.flux.pipeline_flux import calculate_shift, retrieve_timesteps
from diffusers.utils import BaseOutput
from PIL import Image

from engine import inputs, modes
from engine.binding import (
    name_binding_bias,
    name_token_mask,
    region_attention_bias,
    region_binding,
    subject_regions,
)
from engine.checkpoint import build_dsm, load_adapter
from engine.conditioning import (
    Conditions,
    encode_conditions,
    encode_tokens,
    pose_map_image,
    resize_reference,
    vision_states,
)
from engine.controlnet import TAKES_HANDS, ControlSettings, check_controlnet, control_residuals, default_settings, keep
from engine.controlnet import check_settings as check_control_settings
from engine.dsm import DisentangledSemanticModulation, check_dsm_fits
from engine.errors import EngineError, GenerationCancelled
from engine.hub import hub_error, resolve_token
from engine.lora import LoraSettings, apply_lora_state
from engine.lora import fuse_lora as fuse_lora_weights
from engine.settings import CLIP_VISION, FLUX_DEV, SCHEDULES, AstraSettings
from engine.transformer import astra_forward, modulate_text_stream
from engine.uno_convert import read_uno_lora
from pose_db.scene.model import PoseScene
from pose_db.scene.transforms import fit_scene

TINY_MESSAGE = "tiny engine: untrained random weights, images are noise"

StepCallback = Callable[[Any, int, torch.Tensor, dict], dict]


@dataclass
class AstraPipelineOutput(BaseOutput):
    """Generated images (PIL), and whether they came from the tiny engine (then they are noise)."""

    images: list[Image.Image]
    is_tiny: bool = False
    message: str = ""


class AstraPipeline(FluxPipeline):
    """FLUX.1-dev + EURoPE + DSM + LoRA. See the module docstring; build it with
    :meth:`from_pretrained` (real weights) or :meth:`tiny` (random small weights, CPU).

    ``mode`` (``engine.modes``) says what the loaded weights were trained on, and only that is
    fed to the DiT: ``astra`` (ASTRA adapter: reference + pose tokens, DSM), ``public`` (UNO's
    LoRA: reference tokens; the pose through ``controlnet``) or ``base`` (FLUX alone; the pose
    through ``controlnet``).

    Cancelling: a ``callback_on_step_end`` may set ``pipe.interrupt = True`` (or raise
    :class:`~engine.errors.GenerationCancelled`); the call then stops before the next step and
    raises ``GenerationCancelled``. Nothing is decoded and the pipeline stays usable.
    """

    binding_attention = "auto"  # "auto", "flex" or "dense": see _region_binding
    model_cpu_offload_seq = "text_encoder->text_encoder_2->image_encoder->dsm->transformer->vae"
    # The ControlNet is called every step next to the transformer, so (as in diffusers'
    # FluxControlNetPipeline) it stays outside the offload chain and gets its own hook.
    _optional_components = ["image_encoder", "feature_extractor", "dsm", "controlnet"]

    def __init__(self, scheduler, vae, text_encoder, tokenizer, text_encoder_2, tokenizer_2, transformer,
                 image_encoder=None, feature_extractor=None, dsm: DisentangledSemanticModulation | None = None,
                 controlnet: FluxControlNetModel | None = None, settings: AstraSettings | None = None,
                 is_tiny: bool = False, mode: str | None = None, control: ControlSettings | None = None,
                 checkpoints: dict[str, str] | None = None) -> None:
        """Args beyond FLUX's components:
            dsm: the adapter's DSM (``astra`` mode only).
            controlnet: a pose ``FluxControlNetModel`` (``public``/``base`` modes only).
            settings: reference sizes, pose scale, schedule... (stored with an adapter).
            is_tiny: built from tiny configs with random weights (images are noise).
            mode: ``astra``, ``public`` or ``base``; None means ``astra`` with a DSM, else ``base``
                (a UNO LoRA fused into ``transformer`` cannot be seen, so say ``public``).
            control: the ControlNet's default settings (its model card's pose values).
            checkpoints: what was loaded, for status lines (``{"base": ..., "uno_lora": ...}``).
        """
        super().__init__(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                         text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, transformer=transformer,
                         image_encoder=image_encoder, feature_extractor=feature_extractor)
        self.register_modules(dsm=dsm, controlnet=controlnet)
        self.settings = settings or AstraSettings()
        self.is_tiny = is_tiny
        self.mode = mode or (modes.ASTRA if dsm is not None else modes.BASE)
        self.control = control or (ControlSettings() if controlnet is not None else None)
        self.checkpoints = dict(checkpoints or {})
        self._interrupt = False
        _check_components(self.mode, dsm, controlnet, transformer, self.settings)
        if dsm is not None:  # a DSM for another base model or encoder is refused here, not mid-generation
            check_dsm_fits(dsm.config, transformer, image_encoder)

    # ----------------------------------------------------------------------------- construction

    @classmethod
    def from_pretrained(cls, base: str = FLUX_DEV, adapter: str | None = None, *, uno_lora: str | None = None,
                        controlnet: str | None = None, control_mode: int | None = None, schedule: str | None = None,
                        image_encoder: str | None = CLIP_VISION, dtype: torch.dtype | None = None,
                        torch_dtype: torch.dtype | None = None, fuse_lora: bool = False, token: str | None = None,
                        adapter_revision: str | None = None, local_files_only: bool = False,
                        **flux_kwargs: Any) -> AstraPipeline:
        """Load FLUX (hub id or local folder) and what decides the mode (``engine.modes``).

            pipe = AstraPipeline.from_pretrained("black-forest-labs/FLUX.1-dev", adapter="you/astra-adapter",
                                                 dtype=torch.bfloat16).to("cuda")                 # astra
            pipe = AstraPipeline.from_pretrained(uno_lora="bytedance-research/UNO",
                                                 controlnet="Shakker-Labs/FLUX.1-dev-ControlNet-Union-Pro-2.0",
                                                 dtype=torch.bfloat16, fuse_lora=True)           # public

        The ControlNet and UNO's LoRA load before the base model, so a missing one fails in
        seconds with :class:`engine.modes.WeightsUnavailable`, not after FLUX has loaded.

        Args:
            base: FLUX.1-dev hub id or a local diffusers folder (gated on the hub: accept its
                licence and set ``HF_TOKEN``).
            adapter: ASTRA adapter folder or hub repo (``astra_config.json``, LoRA, DSM): ``astra``
                mode. None: ``public`` with ``uno_lora``, else ``base``.
            uno_lora: UNO's ``dit_lora.safetensors`` (a file, its folder or ``bytedance-research/UNO``),
                converted by ``engine.uno_convert``: ``public`` mode (references as UNO feeds them).
            controlnet: a pose ``FluxControlNetModel`` (hub id or folder), e.g.
                ``Shakker-Labs/FLUX.1-dev-ControlNet-Union-Pro-2.0``; not with ``adapter``.
            control_mode: a union v1 ControlNet's mode (pose 4); None: its card's default.
            schedule: ``"flux"`` or ``"uno"`` (``AstraSettings.schedule``); None keeps the default.
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
        token = resolve_token(token)
        hub = dict(token=token, local_files_only=local_files_only)
        mode = modes.mode_for(adapter=adapter is not None, uno_lora=uno_lora is not None)
        if mode == modes.ASTRA and controlnet is not None:
            raise EngineError("An ASTRA adapter takes the pose as tokens; load it without a ControlNet.")
        if schedule is not None and schedule not in SCHEDULES:
            raise EngineError(f"schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}.")
        # 1. The small optional parts first: a missing one fails before FLUX's ~33 GB load.
        control_net, control = _load_controlnet(controlnet, control_mode, dtype, hub) if controlnet else (None, None)
        uno = _load_optional("uno_lora", lambda: read_uno_lora(uno_lora, **hub)) if uno_lora else None
        # 2. The base model; 3. what adapts it.
        flux = _load("base model", base, lambda: FluxPipeline.from_pretrained(base, dtype=dtype, **hub, **flux_kwargs),
                     token)
        components = {k: v for k, v in flux.components.items() if k not in ("image_encoder", "feature_extractor")}
        dsm, settings = None, AstraSettings()
        if adapter is not None:
            dsm, settings = _load_adapter(adapter, components["transformer"], dtype, fuse_lora,
                                          revision=adapter_revision, **hub)
        if uno is not None:
            _apply_uno(components["transformer"], *uno, fuse_lora=fuse_lora)
        if control_net is not None:
            check_controlnet(control_net, components["transformer"])
        if schedule is not None:
            settings = replace(settings, schedule=schedule)
        checkpoints = {k: v for k, v in dict(base=base, adapter=adapter, uno_lora=uno_lora,
                                             controlnet=controlnet).items() if v}
        vision = processor = None
        if dsm is not None:
            if image_encoder is None:
                raise EngineError("This adapter has a DSM, which needs a CLIP vision encoder; pass image_encoder= "
                                  f"(e.g. {CLIP_VISION!r} or a local folder).")
            from transformers import CLIPImageProcessor, CLIPVisionModel

            vision = _load("CLIP vision encoder", image_encoder, lambda: CLIPVisionModel.from_pretrained(
                image_encoder, dtype=dtype, **hub), token)
            processor = _load("CLIP image processor", image_encoder,
                              lambda: CLIPImageProcessor.from_pretrained(image_encoder, **hub), token)
        return cls(**components, image_encoder=vision, feature_extractor=processor, dsm=dsm, controlnet=control_net,
                   settings=settings, mode=mode, control=control, checkpoints=checkpoints)

    @classmethod
    def tiny(cls, seed: int = 0, adapter: str | None = None, mode: str = modes.ASTRA,
             fuse_lora: bool = False) -> AstraPipeline:
        """Every component from small configs with random weights (CPU, seconds). Images are noise.

        Args:
            seed: seeds every random weight (the same seed gives the same engine).
            adapter: an adapter folder trained on this tiny engine (``python -m engine.train
                --tiny``): its LoRA goes into the transformer and its DSM replaces the random one.
            mode: ``astra`` (random DSM), ``public`` (a random LoRA with UNO's key names, converted
                and applied as ``from_pretrained`` does, and a tiny Union-Pro-2.0-shaped ControlNet:
                double blocks only, no mode embedding) or ``base`` (that ControlNet only).
            fuse_lora: merge the tiny UNO LoRA into the weights (``public`` only).
        """
        from engine.tiny import REFERENCE_SIZES, TEXT_TOKENS, tiny_components, tiny_controlnet, tiny_uno_state_dict
        from engine.uno_convert import convert_uno_state_dict

        modes.spec(mode)
        if adapter is not None and mode != modes.ASTRA:
            raise EngineError(f"An ASTRA adapter makes an astra engine, not a {mode} one.")
        settings = AstraSettings(references=REFERENCE_SIZES, max_sequence_length=TEXT_TOKENS)
        components = tiny_components(seed)
        extra: dict[str, Any] = {}
        if adapter is not None:
            dsm, _ = _load_adapter(adapter, components["transformer"], torch.float32, False)
            components["dsm"] = dsm
        if mode != modes.ASTRA:
            for name in ("dsm", "image_encoder", "feature_extractor"):
                components.pop(name)
            extra = dict(controlnet=tiny_controlnet(components["transformer"], seed),
                         control=ControlSettings(0.9, 0.0, 0.65, None))
        if mode == modes.PUBLIC:
            uno_state = tiny_uno_state_dict(components["transformer"], seed=seed)
            _apply_uno(components["transformer"], *convert_uno_state_dict(uno_state), fuse_lora=fuse_lora)
        pipe = cls(**components, settings=settings, is_tiny=True, mode=mode, **extra)
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
                     callback_on_step_end: StepCallback | None = None, output_type: str = "pil",
                     control: ControlSettings | None = None) -> None:
        """Validate everything before any model runs; raises ``EngineError`` saying what to fix.

        Subjects or a pose that this mode's weights cannot use are refused with what to load
        (``engine.modes.check_mode_inputs``), never silently fed to the DiT.
        """
        inputs.check_prompt(prompt)
        pose_tokens = pose is not None and modes.spec(self.mode).pose_tokens
        inputs.check_size(height, width, self.token_px * self.settings.pose_scale if pose_tokens else self.token_px)
        inputs.check_subjects(subjects, subject_names, self.max_subjects)
        inputs.check_pose_subjects(inputs.read_pose(pose), len(subjects))
        modes.check_mode_inputs(self.mode, num_subjects=len(subjects), has_pose=pose is not None,
                                has_controlnet=self.controlnet is not None)
        inputs.check_settings(num_inference_steps, guidance_scale, seed, binding_strength, callback_on_step_end)
        inputs.check_output_type(output_type)
        if control is not None:
            check_control_settings(self.controlnet, control.conditioning_scale, control.guidance_start,
                                   control.guidance_end, control.control_mode)

    # ----------------------------------------------------------------------------- generation

    @torch.no_grad()
    def __call__(self, prompt: str, subjects: list[Image.Image] | None = None,
                 subject_names: list[str | None] | None = None, pose: dict | PoseScene | None = None,
                 height: int = 1024, width: int = 1024, num_inference_steps: int = 28,
                 guidance_scale: float = 3.5, seed: int = 0, binding_strength: float = 1.0,
                 callback_on_step_end: StepCallback | None = None, output_type: str = "pil",
                 controlnet_conditioning_scale: float | None = None, control_guidance_start: float | None = None,
                 control_guidance_end: float | None = None, control_mode: int | None = None,
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
            controlnet_conditioning_scale, control_guidance_start, control_guidance_end, control_mode:
                the pose ControlNet's strength, active share of the steps and union mode
                (``public``/``base`` with a ControlNet); None takes the model card's value
                (``pipe.control``; Union-Pro-2.0 pose: 0.9, 0 to 0.65, no mode).
        """
        # 1. Check inputs
        subjects = [] if subjects is None else subjects
        subject_names = subject_names or None  # an empty list means "no names"
        control = self._control_settings(controlnet_conditioning_scale, control_guidance_start,
                                         control_guidance_end, control_mode)
        self.check_inputs(prompt, subjects, subject_names, pose, height, width, num_inference_steps,
                          guidance_scale, seed, binding_strength, callback_on_step_end, output_type, control)
        subjects = [image.convert("RGB") for image in subjects]  # RGBA, L, P, CMYK... all encode as RGB
        self._interrupt = False
        # 2. Define call parameters. Inputs go to the execution device (the accelerator under CPU
        # offload, when every model still sits on the CPU or on `meta`), as in FluxKontextPipeline.
        device, dtype = self._execution_device, self.transformer.dtype
        latent_hw = (height // self.token_px, width // self.token_px)
        scene = inputs.read_pose(pose)
        scene = fit_scene(scene, width, height) if scene is not None else None

        # 3. Encode the prompt
        prompt_embeds, pooled, text_ids = self.encode_prompt(
            prompt=prompt, device=device, max_sequence_length=self.settings.max_sequence_length)
        # 4. Encode the conditions (references, pose map; the ControlNet's pose)
        conditions = self._encode_conditions(subjects, scene, latent_hw)
        control_tokens = self._encode_control(scene, latent_hw, device) if control is not None else None
        img_ids = conditions.layout.position_ids().to(device)
        txt_ids = text_ids.to(device=device, dtype=img_ids.dtype)
        # 5. DSM and the binding: they depend on text and references only, computed once, not per step.
        prompt_embeds, layer_offsets = self._semantic_modulation(
            prompt, prompt_embeds, subjects, subject_names, binding_strength)
        bias, binding = self._region_binding(conditions, prompt_embeds.shape[1],
                                             subject_regions(scene, latent_hw, self.settings.region_dilate),
                                             binding_strength, device, dtype)
        tokens = conditions.tokens.to(device=device, dtype=dtype) if conditions.tokens is not None else None

        # 6. Prepare latent variables
        generator = torch.Generator("cpu").manual_seed(seed)
        latents, _ = self.prepare_latents(1, self.transformer.config.in_channels // 4, height, width,
                                          prompt_embeds.dtype, device, generator)
        # 7. Prepare timesteps
        timesteps = self._timesteps(num_inference_steps, conditions.layout.num_latent, device)
        control_scales = [control.conditioning_scale * keep(i, len(timesteps), control.guidance_start,
                                                            control.guidance_end)
                          for i in range(len(timesteps))] if control_tokens is not None else None
        guidance = (torch.full((1,), float(guidance_scale), device=device, dtype=torch.float32)
                    if self.transformer.config.guidance_embeds else None)

        # 8. Denoising loop. As stock FLUX: a fixed begin index avoids a device-to-host sync per step (and helps compile).
        self.scheduler.set_begin_index(0)
        with modulate_text_stream(self.transformer, layer_offsets), self.progress_bar(total=len(timesteps)) as bar:
            for step, t in enumerate(timesteps):
                if self.interrupt:
                    raise GenerationCancelled()
                self._current_timestep = t
                timestep = t.expand(1).to(latents.dtype) / 1000
                residuals = (None, None)
                if control_scales is not None and control_scales[step] > 0:
                    # The ControlNet sees the latent alone, with the latent's ids (engine.controlnet).
                    residuals = control_residuals(
                        self.controlnet, latents, control_tokens, conditioning_scale=control_scales[step],
                        control_mode=control.control_mode, encoder_hidden_states=prompt_embeds,
                        pooled_projections=pooled, timestep=timestep, latent_ids=img_ids[:conditions.layout.num_latent],
                        txt_ids=txt_ids, guidance=guidance)
                with self.transformer.cache_context("cond"):
                    velocity = astra_forward(
                        self.transformer, latents, conditions=tokens, encoder_hidden_states=prompt_embeds,
                        pooled_projections=pooled, timestep=timestep,
                        img_ids=img_ids, txt_ids=txt_ids, guidance=guidance, attention_bias=bias, binding=binding,
                        controlnet_block_samples=residuals[0], controlnet_single_block_samples=residuals[1])
                latents = self.scheduler.step(velocity, t, latents, return_dict=False)[0]
                if callback_on_step_end is not None:
                    outputs = callback_on_step_end(self, step, t, {"latents": latents}) or {}
                    latents = outputs.pop("latents", latents)
                bar.update()
        self._current_timestep = None
        if self.interrupt:
            raise GenerationCancelled()
        # 9. Decode, and hand offloaded models back to the CPU
        images = self._decode(latents, height, width, output_type)
        self.maybe_free_model_hooks()
        return AstraPipelineOutput(images=images, is_tiny=self.is_tiny, message=TINY_MESSAGE if self.is_tiny else "")

    # ----------------------------------------------------------------------------- steps of a call

    def _encode_conditions(self, subjects: list[Image.Image], scene: PoseScene | None,
                           latent_hw: tuple[int, int]) -> Conditions:
        """The image stream's condition tokens: only the kinds this mode's weights were trained on."""
        spec = modes.spec(self.mode)
        long_side = self.settings.references.for_count(len(subjects))
        references = [resize_reference(image, long_side, self.token_px) for image in subjects] \
            if spec.takes_subjects else []
        pose_map = (pose_map_image(scene, latent_hw, self.settings.pose_scale, self.token_px)
                    if scene is not None and spec.pose_tokens else None)
        conditions = encode_conditions(self.vae, references, pose_map, latent_hw, self.settings.pose_scale,
                                       device=self._execution_device)
        modes.check_stream(self.mode, num_references=len(conditions.layout.ref_hws),
                           has_pose_tokens=conditions.layout.pose_hw is not None)
        return conditions

    def _control_settings(self, scale: float | None, start: float | None, end: float | None,
                          mode: int | None) -> ControlSettings | None:
        """The call's ControlNet settings: each None takes ``self.control`` (the model card's)."""
        if self.controlnet is None:
            if any(value is not None for value in (scale, start, end, mode)):
                raise EngineError("No ControlNet is loaded, so ControlNet settings have no effect; drop them or "
                                  "restart with --controlnet.")
            return None
        base = self.control or ControlSettings()
        return ControlSettings(base.conditioning_scale if scale is None else scale,
                               base.guidance_start if start is None else start,
                               base.guidance_end if end is None else end,
                               base.control_mode if mode is None else mode)

    def _encode_control(self, scene: PoseScene | None, latent_hw: tuple[int, int],
                        device: torch.device) -> torch.Tensor | None:
        """The ControlNet's input: the pose map at the output size, VAE-encoded and packed.

        diffusers samples the VAE posterior here (``retrieve_latents`` with the generator); we take
        its mean, as for the references, so a pose never adds noise of its own.
        """
        if scene is None or modes.spec(self.mode).pose_tokens:
            return None
        image = pose_map_image(scene, latent_hw, 1, self.token_px, hands=TAKES_HANDS)
        tokens, _ = encode_tokens(self.vae, image, device=device)
        return tokens.to(device=device, dtype=self.controlnet.dtype)

    def _region_binding(self, conditions: Conditions, text_len: int, regions: dict, strength: float,
                        device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor | None, Any]:
        """The binding as ``(dense attention bias, None)`` or ``(None, FlexAttention ids)``.

        ``binding_attention``: ``"flex"`` (ids, no S x S mask: SDPA keeps its flash kernel for
        unbound calls and bound ones run fused under compile), ``"dense"`` (the reference), or
        ``"auto"``: flex on CUDA, dense elsewhere (eager flex on the CPU materialises the scores
        and is slower than the dense bias there).
        """
        mode = self.binding_attention
        if mode not in ("auto", "flex", "dense"):
            raise EngineError(f"binding_attention must be 'auto', 'flex' or 'dense', not {mode!r}.")
        if mode == "flex" or (mode == "auto" and torch.device(device).type == "cuda"):
            return None, region_binding(conditions.layout, text_len, regions, strength, device=device)
        return region_attention_bias(conditions.layout, text_len, regions, strength, device=device, dtype=dtype), None

    def _semantic_modulation(self, prompt: str, prompt_embeds: torch.Tensor, subjects: list[Image.Image],
                             subject_names: list[str | None] | None,
                             binding_strength: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        """E' = E + dE (eq. 8) and the per-layer offsets; unchanged without DSM or references."""
        if self.dsm is None or self.image_encoder is None or not subjects:
            return prompt_embeds, None
        if self.dsm.config.timestep_offsets:  # needs per-step offsets; the denoising loop applies fixed ones
            raise EngineError("This adapter's DSM has timestep-dependent layer offsets, which this engine's "
                              "generation loop does not apply yet; train with dsm_timestep_offsets: false.")
        dsm_dtype = self.dsm.dtype
        features = vision_states(self.image_encoder, self.feature_extractor, subjects, self.dsm.config.vision_layers,
                                 device=self._execution_device)
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
        """FLUX's schedule: resolution shift from the latent tokens only (conditions excluded), or
        UNO's milder one (``settings.schedule == "uno"``)."""
        config = self.scheduler.config
        if self.settings.schedule == "uno":  # UNO's get_schedule((W // 8) * (H // 8) // 256): latent tokens / 64
            num_latent_tokens = num_latent_tokens // 64
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
    config, lora_state, dsm_state = load_adapter(adapter, token=token, revision=revision,
                                                 local_files_only=local_files_only)
    if lora_state:
        apply_lora_state(transformer, config.lora, lora_state)
        if fuse_lora:
            fuse_lora_weights(transformer)
    dsm = build_dsm(config, dsm_state)
    if dsm is not None:
        dsm.to(device=transformer.device, dtype=dtype).eval()
    return dsm, config.settings


def _load(what: str, source: str, load: Callable[[], Any], token: str | None = None) -> Any:
    """Run a hub/folder load; failures become one EngineError that says what to do (``engine.hub``)."""
    try:
        return load()
    except EngineError:
        raise
    except Exception as error:  # hub, network, disk and format errors share no base class
        raise hub_error(error, what, source, token=token) from error


def _check_components(mode: str, dsm, controlnet, transformer, settings: AstraSettings) -> None:
    """Refuse component sets a mode was not trained with (``engine.modes``)."""
    spec = modes.spec(mode)
    if dsm is not None and not spec.dsm:
        raise EngineError(f"{mode} mode has no DSM (only an ASTRA adapter trains one); build the pipeline without it.")
    if controlnet is not None:
        if spec.pose_tokens:
            raise EngineError("An ASTRA adapter takes the pose as tokens; load it without a ControlNet.")
        check_controlnet(controlnet, transformer)
    if settings.schedule not in SCHEDULES:
        raise EngineError(f"schedule must be one of {', '.join(SCHEDULES)}, not {settings.schedule!r}.")


def _apply_uno(transformer, peft_state: dict[str, torch.Tensor], rank: int, *, fuse_lora: bool) -> None:
    """UNO's converted LoRA into ``transformer`` (scale 1: UNO sets no alpha), fused if asked."""
    apply_lora_state(transformer, LoraSettings(rank=rank), peft_state)
    if fuse_lora:
        fuse_lora_weights(transformer)


def _load_controlnet(source: str, control_mode: int | None, dtype: torch.dtype,
                     hub: dict) -> tuple[FluxControlNetModel, ControlSettings]:
    """A pose ControlNet and its settings (the model card's, ``control_mode`` overriding)."""
    net = _load_optional("controlnet", lambda: FluxControlNetModel.from_pretrained(source, dtype=dtype, **hub),
                         source=source, token=hub.get("token"))
    control = default_settings(source, net)
    if control_mode is not None:
        control = replace(control, control_mode=control_mode)
    return net.eval(), control


def _load_optional(part: str, load: Callable[[], Any], *, source: str | None = None, token: str | None = None) -> Any:
    """Load a part of the public mode; any failure becomes ``WeightsUnavailable`` naming it."""
    try:
        return load()
    except Exception as error:  # EngineError from our readers, hub/format errors from diffusers
        if not isinstance(error, EngineError):
            error = hub_error(error, part.replace("_", " "), source or "", token=token)
        raise modes.WeightsUnavailable(part, str(error)) from error
