"""The pose through a FLUX ControlNet, next to reference tokens (``public`` and ``base`` modes).

diffusers' ``FluxControlNetPipeline`` runs the ControlNet on the noisy latent and adds each of
its block outputs to the *whole* image stream of the DiT (``FluxTransformer2DModel.forward``:
``hidden_states + controlnet_block_samples[i // interval]``). With UNO's reference tokens
appended to the stream the shapes no longer match. ComfyUI fixed the same bug for FLUX Kontext by
zero-padding the residual over the reference span; we do the same (:func:`pad_residuals`): the
ControlNet sees the noisy latent with the latent's ids only, and its residuals reach the latent
slice only, so the reference tokens' hidden states are never touched by it directly.

Checkpoints (model cards, checked through their published text; see ``CARD_DEFAULTS``):

* ``Shakker-Labs/FLUX.1-dev-ControlNet-Union-Pro-2.0``: 6 double blocks, 0 single, no mode
  embedding (pass no ``control_mode``); pose: conditioning scale 0.9, ``control_guidance_end`` 0.65.
* ``InstantX/FLUX.1-dev-Controlnet-Union``, ``Shakker-Labs/FLUX.1-dev-ControlNet-Union-Pro``: a mode
  embedding, pose is ``control_mode=4``; scale 0.3-0.8.
* ``Shakker-Labs/FLUX.1-dev-ControlNet-Pose``: pose only; scale 0.7.

XLabs ControlNets (pixel-space ``input_hint_block``, residuals repeated over blocks) are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from diffusers import FluxControlNetModel

from engine.errors import EngineError

UNION_PRO_2 = "Shakker-Labs/FLUX.1-dev-ControlNet-Union-Pro-2.0"
# A pose ControlNet reads an openpose map as controlnet_aux draws it, hands included (its
# openpose_full; the Shakker-Labs demo Spaces ship controlnet_aux's open_pose with its hand
# model), so its control image carries the scene's hands. ASTRA's pose tokens stay body-only.
TAKES_HANDS = True
UNION_POSE_MODE = 4  # canny 0, tile 1, depth 2, blur 3, pose 4, gray 5, lq 6 (InstantX / Shakker union v1 cards)
MAX_CONDITIONING_SCALE = 2.0


@dataclass(frozen=True)
class ControlSettings:
    """How strongly and when a ControlNet steers (its model card's pose values by default).

    Args:
        conditioning_scale: multiplies every residual (diffusers' ``controlnet_conditioning_scale``).
        guidance_start, guidance_end: the share of the steps, from 0 to 1, during which it runs
            (diffusers' ``control_guidance_start/end``).
        control_mode: a union ControlNet's mode index (pose = 4), or None for models without one.
    """

    conditioning_scale: float = 0.7
    guidance_start: float = 0.0
    guidance_end: float = 1.0
    control_mode: int | None = None


CARD_DEFAULTS = {
    UNION_PRO_2: ControlSettings(0.9, 0.0, 0.65, None),
    "InstantX/FLUX.1-dev-Controlnet-Union": ControlSettings(0.6, 0.0, 1.0, UNION_POSE_MODE),
    "Shakker-Labs/FLUX.1-dev-ControlNet-Union-Pro": ControlSettings(0.6, 0.0, 1.0, UNION_POSE_MODE),
    "Shakker-Labs/FLUX.1-dev-ControlNet-Pose": ControlSettings(0.7, 0.0, 1.0, None),
}


def default_settings(source: str, controlnet: FluxControlNetModel) -> ControlSettings:
    """The card's pose settings for a known hub id or a folder named like one (``hf download ...
    --local-dir FLUX.1-dev-ControlNet-Union-Pro-2.0``); otherwise from the architecture:
    Union-Pro-2.0's (6 double blocks, 0 single, no modes), union v1 (mode 4), else the Pose card's."""
    name = str(source).rstrip("/").replace("\\", "/").split("/")[-1]
    for repo, settings in CARD_DEFAULTS.items():
        if str(source).rstrip("/") == repo or name == repo.split("/")[-1]:
            return settings
    config = controlnet.config
    if config.num_mode is None and (config.num_layers, config.num_single_layers) == (6, 0):
        return CARD_DEFAULTS[UNION_PRO_2]
    if config.num_mode is not None:
        return ControlSettings(0.6, 0.0, 1.0, UNION_POSE_MODE)
    return ControlSettings()


def check_controlnet(controlnet: FluxControlNetModel, transformer: torch.nn.Module) -> None:
    """Refuse a ControlNet this engine cannot drive, with what to use instead."""
    if controlnet.input_hint_block is not None:
        raise EngineError("This is an XLabs-style FLUX ControlNet (pixel hint block), which ASTRA Studio does not "
                          f"drive; use {UNION_PRO_2} or another diffusers FluxControlNetModel.")
    if controlnet.config.in_channels != transformer.config.in_channels or \
            controlnet.inner_dim != transformer.inner_dim:
        raise EngineError(f"The ControlNet has width {controlnet.inner_dim} and {controlnet.config.in_channels} input "
                          f"channels, the base model {transformer.inner_dim} and {transformer.config.in_channels}; "
                          "use a ControlNet made for this base model (FLUX.1-dev).")


def check_settings(controlnet: FluxControlNetModel | None, conditioning_scale: object, guidance_start: object,
                   guidance_end: object, control_mode: object) -> None:
    """Validate the call's ControlNet settings (``AstraPipeline.check_inputs``)."""
    if controlnet is None:
        return
    for name, value, top in (("controlnet_conditioning_scale", conditioning_scale, MAX_CONDITIONING_SCALE),
                             ("control_guidance_start", guidance_start, 1.0),
                             ("control_guidance_end", guidance_end, 1.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= top:
            raise EngineError(f"{name} must be a number from 0 to {top:g}, got {value!r}.")
    if guidance_start >= guidance_end:
        raise EngineError(f"control_guidance_start ({guidance_start:g}) must be below control_guidance_end "
                          f"({guidance_end:g}); the ControlNet would never run.")
    union = controlnet.config.num_mode is not None
    if union and control_mode is None:
        raise EngineError(f"This union ControlNet needs a control_mode; pose is {UNION_POSE_MODE}.")
    if not union and control_mode is not None:
        raise EngineError("This ControlNet has no mode embedding (e.g. Union-Pro-2.0); pass no control_mode.")
    if union and (isinstance(control_mode, bool) or not isinstance(control_mode, int)
                  or not 0 <= control_mode < controlnet.config.num_mode):
        raise EngineError(f"control_mode must be a whole number below {controlnet.config.num_mode}, "
                          f"got {control_mode!r}.")


def keep(step: int, num_steps: int, start: float, end: float) -> float:
    """1.0 while step ``step`` of ``num_steps`` lies inside [start, end], else 0.0 (diffusers' rule)."""
    return 1.0 - float(step / num_steps < start or (step + 1) / num_steps > end)


def control_residuals(controlnet: FluxControlNetModel, latents: torch.Tensor, control_tokens: torch.Tensor, *,
                      conditioning_scale: float, control_mode: int | None, encoder_hidden_states: torch.Tensor,
                      pooled_projections: torch.Tensor, timestep: torch.Tensor, latent_ids: torch.Tensor,
                      txt_ids: torch.Tensor, guidance: torch.Tensor | None,
                      ) -> tuple[list[torch.Tensor] | None, list[torch.Tensor] | None]:
    """The ControlNet's (double, single) block residuals for the latent tokens only.

    Args:
        controlnet: an InstantX/Shakker-style ``FluxControlNetModel``.
        latents: (B, L_latent, C) the noisy latent alone (no reference tokens).
        control_tokens: (B, L_latent, C) the packed VAE latent of the pose map, at the output size.
        conditioning_scale: residual scale (already multiplied by :func:`keep`).
        control_mode: a union model's mode index, or None.
        encoder_hidden_states, pooled_projections, timestep, txt_ids: as for the DiT.
        latent_ids: (L_latent, 3) the latent's position ids (not the references').
        guidance: the distilled guidance, passed only if the ControlNet embeds it.
    """
    mode = None
    if control_mode is not None:
        mode = torch.full((latents.shape[0], 1), control_mode, dtype=torch.long, device=latents.device)
    dtype = controlnet.dtype
    return controlnet(
        hidden_states=latents.to(dtype), controlnet_cond=control_tokens.to(dtype), controlnet_mode=mode,
        conditioning_scale=conditioning_scale, encoder_hidden_states=encoder_hidden_states.to(dtype),
        pooled_projections=pooled_projections.to(dtype), timestep=timestep.to(dtype), img_ids=latent_ids,
        txt_ids=txt_ids, guidance=guidance if controlnet.config.guidance_embeds else None, return_dict=False)


def pad_residuals(samples: Sequence[torch.Tensor] | None, stream_tokens: int) -> list[torch.Tensor] | None:
    """Zero-pad latent-only residuals (B, L_latent, D) to the whole image stream (B, L_stream, D).

    The latent comes first in the stream, so the residual lands on the latent slice and the
    reference tokens get exactly zero (ComfyUI's Kontext fix).
    """
    if samples is None:
        return None
    padded = []
    for sample in samples:
        extra = stream_tokens - sample.shape[1]
        if extra < 0:
            raise ValueError(f"A ControlNet residual of {sample.shape[1]} tokens for a stream of {stream_tokens}.")
        padded.append(sample if extra == 0 else torch.nn.functional.pad(sample, (0, 0, 0, extra)))
    return padded
