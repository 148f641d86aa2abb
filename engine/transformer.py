"""The ASTRA forward around a stock diffusers ``FluxTransformer2DModel``.

Nothing in FLUX's weights or modules is replaced; ASTRA only changes what goes in:

* the image stream ``[noisy latent z_t | ref_1 ... ref_N | pose]`` (paper eq. 5): clean
  condition tokens go through the same ``x_embedder`` and share the timestep embedding, as in
  UNO; the prediction is sliced back to the latent part;
* EURoPE position ids for that stream (``img_ids``);
* DSM's per-layer offsets on the text stream at the input of every double and single block
  (forward pre-hooks, see :func:`modulate_text_stream`);
* a pose ControlNet's residuals (``public``/``base`` modes) on the latent slice only, zero over
  the reference tokens (``engine.controlnet``);
* subject binding as an additive attention bias. FLUX's stock ``FluxAttnProcessor`` already
  forwards ``attention_mask`` to ``dispatch_attention_fn(attn_mask=...)``, and every block
  passes ``joint_attention_kwargs`` on to its attention, so no custom processor is needed (and
  LoRA, attention backends and torch.compile keep working). The bias needs a backend that takes
  masks (native SDPA, the default).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from diffusers import FluxTransformer2DModel

from engine.controlnet import pad_residuals


def dit_blocks(transformer: FluxTransformer2DModel) -> list[torch.nn.Module]:
    """Every DiT block in stream order: double blocks, then single blocks (DSM's layer order)."""
    return [*transformer.transformer_blocks, *transformer.single_transformer_blocks]


@contextmanager
def modulate_text_stream(transformer: FluxTransformer2DModel,
                         layer_offsets: torch.Tensor | None) -> Iterator[None]:
    """Add DSM's ``layer_offsets[i]`` to the text stream entering block i while inside.

    Hooks live only for the ``with`` body (one generation or one training step): outside it the
    transformer is stock. ``layer_offsets`` is (num_blocks, B, T, inner_dim) or None (no-op).
    """
    if layer_offsets is None:
        yield
        return
    blocks = dit_blocks(transformer)
    if layer_offsets.shape[0] != len(blocks):
        raise ValueError(f"DSM gives {layer_offsets.shape[0]} layer offsets for {len(blocks)} DiT blocks; "
                         "the adapter was built for another base model.")
    handles = [block.register_forward_pre_hook(_TextOffset(offset), with_kwargs=True)
               for block, offset in zip(blocks, layer_offsets)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class _TextOffset:
    """Forward pre-hook adding an offset to a block's ``encoder_hidden_states``.

    Blocks are called with keywords normally, but positionally under gradient checkpointing
    (``(hidden_states, encoder_hidden_states, temb, ...)``): handle both.
    """

    def __init__(self, offset: torch.Tensor) -> None:
        self.offset = offset

    def __call__(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if "encoder_hidden_states" in kwargs:
            kwargs = {**kwargs, "encoder_hidden_states": kwargs["encoder_hidden_states"] + self.offset}
        else:
            args = (args[0], args[1] + self.offset, *args[2:])
        return args, kwargs


def astra_forward(
    transformer: FluxTransformer2DModel,
    latents: torch.Tensor,
    *,
    conditions: torch.Tensor | None,
    encoder_hidden_states: torch.Tensor,
    pooled_projections: torch.Tensor,
    timestep: torch.Tensor,
    img_ids: torch.Tensor,
    txt_ids: torch.Tensor,
    guidance: torch.Tensor | None = None,
    attention_bias: torch.Tensor | None = None,
    binding: Any | None = None,
    joint_attention_kwargs: dict[str, Any] | None = None,
    controlnet_block_samples: list[torch.Tensor] | None = None,
    controlnet_single_block_samples: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Predict the flow for the latent tokens.

    Args:
        transformer: the (possibly LoRA-adapted) FLUX transformer.
        latents: (B, L_latent, C) packed noisy latent z_t.
        conditions: (B, L_cond, C) packed clean reference and pose tokens, or None.
        encoder_hidden_states: (B, T, text_dim) text embeddings (already DSM-modulated).
        pooled_projections: (B, pooled_dim) CLIP pooled text embedding.
        timestep: (B,) in [0, 1] (diffusers' convention: the model multiplies by 1000).
        img_ids: (L_latent + L_cond, 3) EURoPE ids of the whole image stream.
        txt_ids: (T, 3) text ids (zeros in FLUX).
        guidance: (B,) FLUX.1-dev distilled guidance scale, or None for models without it.
        attention_bias: additive (1 or B, 1, T + L, T + L) bias over the joint sequence, or None.
        binding: the same binding as FlexAttention ids (``engine.attention.RegionBinding``), or
            None; the first call with one swaps in ``BindingAttnProcessor`` (stock code without it).
        joint_attention_kwargs: passed on to the attention processors (e.g. LoRA ``scale``).
        controlnet_block_samples, controlnet_single_block_samples: a ControlNet's residuals for
            the *latent* tokens (B, L_latent, D) (``engine.controlnet.control_residuals``), or
            None. diffusers adds them to the whole image stream; here they are zero-padded over
            the condition tokens so they reach the latent slice only.
    """
    num_latent = latents.shape[1]
    stream = latents if conditions is None else torch.cat([latents, conditions.to(latents.dtype)], dim=1)
    if img_ids.shape[0] != stream.shape[1]:
        raise ValueError(f"{img_ids.shape[0]} position ids for an image stream of {stream.shape[1]} tokens.")
    kwargs = dict(joint_attention_kwargs or {})
    if attention_bias is not None:
        kwargs["attention_mask"] = attention_bias.to(latents.dtype)
    if binding is not None:
        from engine.attention import install_binding_processors

        install_binding_processors(transformer)
        kwargs["binding"] = binding
    prediction = transformer(
        hidden_states=stream,
        encoder_hidden_states=encoder_hidden_states,
        pooled_projections=pooled_projections,
        timestep=timestep,
        img_ids=img_ids,
        txt_ids=txt_ids,
        guidance=guidance,
        joint_attention_kwargs=kwargs or None,
        controlnet_block_samples=pad_residuals(controlnet_block_samples, stream.shape[1]),
        controlnet_single_block_samples=pad_residuals(controlnet_single_block_samples, stream.shape[1]),
        return_dict=False,
    )[0]
    return prediction[:, :num_latent]
