"""Visual conditions of ASTRA: references and the pose map as clean packed VAE tokens.

References are resized as UNO does (long side 512 for one reference, 320 for several, then
centre-cropped to whole tokens); the pose map is rendered exactly like controlnet_aux's
``draw_bodypose`` (``pose_db.scene.render``), at full or 1/s resolution. Both are VAE-encoded with
FLUX's shift/scale and packed 2x2 like the latent, giving ``Conditions`` whose tokens follow the
latent in the image stream. DSM's CLIP-vision features of the references are computed here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import AutoencoderKL
from diffusers.pipelines.flux.pipeline_flux import FluxPipeline
from PIL import Image

from engine.europe import GridHW, StreamLayout
from pose_db.scene.model import PoseScene
from pose_db.scene.render import render_pose_map


@dataclass(frozen=True)
class ReferenceSizes:
    """Long side (pixels) a reference is resized to: UNO uses 512 for one, 320 for several."""

    single: int = 512
    multi: int = 320

    def for_count(self, count: int) -> int:
        return self.single if count <= 1 else self.multi


@dataclass
class Conditions:
    """Packed condition tokens ``[ref_1 ... ref_N | pose]`` (None if there are none) and the
    layout of the whole image stream they extend."""

    tokens: torch.Tensor | None
    layout: StreamLayout


def resize_reference(image: Image.Image, long_side: int, multiple: int = 16) -> Image.Image:
    """UNO's ``preprocess_ref``: scale the long side to ``long_side`` (aspect kept), then
    centre-crop both sides down to a multiple of ``multiple`` pixels (one packed token)."""
    w, h = image.size
    if w >= h:
        new_w, new_h = long_side, max(int(long_side / w * h), multiple)
    else:
        new_w, new_h = max(int(long_side / h * w), multiple), long_side
    image = image.convert("RGB").resize((new_w, new_h), resample=Image.LANCZOS)
    crop_w, crop_h = new_w // multiple * multiple, new_h // multiple * multiple
    left, top = (new_w - crop_w) // 2, (new_h - crop_h) // 2
    return image.crop((left, top, left + crop_w, top + crop_h))


def pose_map_image(scene: PoseScene, latent_hw: GridHW, pose_scale: int, token_px: int = 16, *,
                   hands: bool = False) -> Image.Image:
    """The pose map at 1/``pose_scale`` of the output size, in whole packed tokens.

    ``scene`` must already be fitted to the output canvas. A compact map is drawn at full size
    and area-downsampled (as OminiControl2 shrinks its conditions), which keeps limbs visible.
    ``hands`` draws the people's hands too (a pose ControlNet's map; ASTRA's tokens are body-only).
    """
    h, w = _pose_grid(latent_hw, pose_scale)
    full = Image.fromarray(render_pose_map(scene, width=scene.width, height=scene.height, hands=hands))
    size = (w * token_px, h * token_px)
    return full if full.size == size else full.resize(size, resample=Image.BOX)


def _pose_grid(latent_hw: GridHW, pose_scale: int) -> GridHW:
    return max(latent_hw[0] // pose_scale, 1), max(latent_hw[1] // pose_scale, 1)


@torch.no_grad()
def encode_tokens(vae: AutoencoderKL, image: Image.Image, *,
                  device: torch.device | str | None = None) -> tuple[torch.Tensor, GridHW]:
    """VAE-encode an RGB image to packed latent tokens (1, h*w, 4*C) and its token grid (h, w).

    The posterior mean is used (no sampling noise), shifted and scaled as FLUX's latents are.

    Args:
        vae: FLUX's VAE.
        image: the RGB image (whole packed tokens: sides multiples of 16).
        device: where the pixels go: the pipeline's ``_execution_device`` (as diffusers'
            ``FluxKontextPipeline`` encodes its image), never ``vae.device``: under
            ``enable_model_cpu_offload`` the VAE sits on the CPU until ``encode`` moves it, and
            under sequential offload its weights are on ``meta``. None: ``vae.device`` (no offload).
    """
    device = vae.device if device is None else device
    pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0)
    pixels = pixels.permute(2, 0, 1)[None].to(device=device, dtype=vae.dtype)
    latent = vae.encode(pixels).latent_dist.mode()
    latent = (latent - vae.config.shift_factor) * vae.config.scaling_factor
    _, c, lh, lw = latent.shape
    return FluxPipeline._pack_latents(latent, 1, c, lh, lw), (lh // 2, lw // 2)


def encode_conditions(vae: AutoencoderKL, references: Sequence[Image.Image], pose_map: Image.Image | None,
                      latent_hw: GridHW, pose_scale: int = 1, *,
                      device: torch.device | str | None = None) -> Conditions:
    """Encode already-resized references and the pose map into the image stream's condition part
    (``device``: the pipeline's execution device, see :func:`encode_tokens`)."""
    tokens, ref_hws = [], []
    for image in references:
        packed, hw = encode_tokens(vae, image, device=device)
        tokens.append(packed)
        ref_hws.append(hw)
    pose_hw = None
    if pose_map is not None:
        packed, pose_hw = encode_tokens(vae, pose_map, device=device)
        tokens.append(packed)
    layout = StreamLayout(latent_hw, tuple(ref_hws), pose_hw, pose_scale)
    return Conditions(torch.cat(tokens, dim=1) if tokens else None, layout)


@torch.no_grad()
def vision_states(image_encoder: torch.nn.Module, feature_extractor, references: Sequence[Image.Image],
                  layer: int | Sequence[int], *, device: torch.device | str | None = None) -> torch.Tensor:
    """(1, N, P, D) CLIP-vision hidden states (all patch tokens) for DSM.

    ``layer`` is one hidden-state index or several (``DSMConfig.vision_layers``); several are
    concatenated along the tokens, layer by layer, so P = len(layers) x tokens per layer.
    ``device``: the pipeline's execution device (under sequential offload the encoder's
    parameters are on ``meta``, so they cannot say where its inputs go); None: its parameters'.
    """
    layers = (layer,) if isinstance(layer, int) else tuple(layer)
    pixels = feature_extractor(images=list(references), return_tensors="pt").pixel_values
    param = next(image_encoder.parameters())
    device = param.device if device is None else device
    out = image_encoder(pixels.to(device=device, dtype=param.dtype), output_hidden_states=True)
    return torch.cat([out.hidden_states[i] for i in layers], dim=1)[None]
