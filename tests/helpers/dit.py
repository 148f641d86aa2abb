"""A tiny FLUX DiT and one fixed input for LoRA / converter tests (random weights, CPU, ms)."""

from __future__ import annotations

import torch
from diffusers import FluxTransformer2DModel

DIM, HEADS, HEAD_DIM, TEXT_DIM, CHANNELS = 32, 2, 16, 32, 16


def tiny_transformer(seed: int = 0, num_layers: int = 1, num_single_layers: int = 1) -> FluxTransformer2DModel:
    """Same seed, same weights: two calls give two identical base models."""
    torch.manual_seed(seed)
    model = FluxTransformer2DModel(
        patch_size=1, in_channels=CHANNELS, num_layers=num_layers, num_single_layers=num_single_layers,
        attention_head_dim=HEAD_DIM, num_attention_heads=HEADS, joint_attention_dim=TEXT_DIM,
        pooled_projection_dim=TEXT_DIM, guidance_embeds=True, axes_dims_rope=(4, 6, 6))
    return model.eval()


def dit_inputs(seed: int = 1, image_tokens: int = 16, text_tokens: int = 8) -> dict:
    generator = torch.Generator().manual_seed(seed)
    side = int(image_tokens ** 0.5)
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    img_ids = torch.stack([torch.zeros_like(rows), rows, cols], dim=-1).reshape(-1, 3).float()
    return dict(
        hidden_states=torch.randn(1, image_tokens, CHANNELS, generator=generator),
        encoder_hidden_states=torch.randn(1, text_tokens, TEXT_DIM, generator=generator),
        pooled_projections=torch.randn(1, TEXT_DIM, generator=generator),
        timestep=torch.tensor([0.5]), guidance=torch.tensor([3.5]),
        img_ids=img_ids, txt_ids=torch.zeros(text_tokens, 3), return_dict=False)


@torch.no_grad()
def run(transformer: FluxTransformer2DModel, inputs: dict) -> torch.Tensor:
    return transformer(**inputs)[0]


def randomise_lora(transformer: torch.nn.Module, seed: int = 2, std: float = 0.2) -> None:
    """Give every LoRA matrix random values (a fresh LoRA is the identity: B = 0)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * std)
