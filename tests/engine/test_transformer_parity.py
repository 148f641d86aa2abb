"""The ASTRA forward around a stock FluxTransformer2DModel: parity and the extra image tokens."""

import pytest
import torch
from diffusers import FluxPipeline, FluxTransformer2DModel

from engine.europe import StreamLayout, position_ids
from engine.transformer import astra_forward, dit_blocks, modulate_text_stream

TEXT, LATENT_HW = 7, (4, 6)


def _transformer(seed=0):
    torch.manual_seed(seed)
    return FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=2, num_single_layers=3, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=24, pooled_projection_dim=20, guidance_embeds=True,
        axes_dims_rope=(4, 6, 6)).eval()


def _inputs(seed=1, conditions=0):
    g = torch.Generator().manual_seed(seed)
    n = LATENT_HW[0] * LATENT_HW[1]
    return dict(
        latents=torch.randn(1, n, 16, generator=g),
        conditions=torch.randn(1, conditions, 16, generator=g) if conditions else None,
        encoder_hidden_states=torch.randn(1, TEXT, 24, generator=g),
        pooled_projections=torch.randn(1, 20, generator=g),
        timestep=torch.tensor([0.7]),
        guidance=torch.tensor([3.5]),
        txt_ids=torch.zeros(TEXT, 3),
    )


def _stock(transformer, x):
    img_ids = FluxPipeline._prepare_latent_image_ids(1, *LATENT_HW, "cpu", torch.float32)
    return transformer(hidden_states=x["latents"], encoder_hidden_states=x["encoder_hidden_states"],
                       pooled_projections=x["pooled_projections"], timestep=x["timestep"], img_ids=img_ids,
                       txt_ids=x["txt_ids"], guidance=x["guidance"], return_dict=False)[0]


@torch.no_grad()
def test_text_only_forward_equals_stock_diffusers():
    transformer, x = _transformer(), _inputs()
    stock = _stock(transformer, x)
    zeros = torch.zeros(len(dit_blocks(transformer)), 1, TEXT, transformer.inner_dim)
    with modulate_text_stream(transformer, zeros):  # an untrained DSM's offsets
        ours = astra_forward(transformer, img_ids=position_ids(LATENT_HW), attention_bias=None, **x)
    assert ours.shape == stock.shape
    assert (ours - stock).abs().max().item() <= 1e-5


@torch.no_grad()
def test_condition_tokens_steer_the_latent_but_are_sliced_off():
    transformer = _transformer()
    layout = StreamLayout(LATENT_HW, ((2, 3),), LATENT_HW)
    extra = layout.num_tokens - layout.num_latent
    a, b = _inputs(conditions=extra), _inputs(conditions=extra)
    b["conditions"] = b["conditions"] + 1.0
    out_a = astra_forward(transformer, img_ids=layout.position_ids(), **a)
    out_b = astra_forward(transformer, img_ids=layout.position_ids(), **b)
    assert out_a.shape == a["latents"].shape
    assert (out_a - out_b).abs().max() > 1e-4


@torch.no_grad()
def test_attention_bias_reaches_the_attention():
    transformer = _transformer()
    layout = StreamLayout(LATENT_HW, ((2, 3),))
    x = _inputs(conditions=6)
    size = TEXT + layout.num_tokens
    zero = torch.zeros(1, 1, size, size)
    blocked = zero.clone()
    blocked[..., TEXT:TEXT + layout.num_latent, TEXT + layout.num_latent:] = -30.0
    base = astra_forward(transformer, img_ids=layout.position_ids(), **x)
    same = astra_forward(transformer, img_ids=layout.position_ids(), attention_bias=zero, **x)
    seen = []
    handles = [block.attn.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs.get("attention_mask") is blocked), with_kwargs=True)
        for block in dit_blocks(transformer)]
    moved = astra_forward(transformer, img_ids=layout.position_ids(), attention_bias=blocked, **x)
    for handle in handles:
        handle.remove()
    assert seen == [True] * len(dit_blocks(transformer))  # every double and single block's attention
    assert (base - same).abs().max() <= 1e-5
    assert (base - moved).abs().max() > 1e-4


def test_hooks_add_offsets_under_gradient_checkpointing_too():
    """Checkpointed blocks receive their arguments positionally; the offsets must still land."""
    transformer, x = _transformer(), _inputs()
    offsets = 0.3 * torch.randn(len(dit_blocks(transformer)), 1, TEXT, transformer.inner_dim)
    ids = position_ids(LATENT_HW)
    with torch.no_grad():
        plain = astra_forward(transformer, img_ids=ids, **x)
        with modulate_text_stream(transformer, offsets):
            keyword = astra_forward(transformer, img_ids=ids, **x)
    transformer.enable_gradient_checkpointing()
    transformer.train()
    with modulate_text_stream(transformer, offsets):
        positional = astra_forward(transformer, img_ids=ids, **x)
    positional.sum().backward()
    assert (keyword - plain).abs().max() > 1e-4
    assert (positional.detach() - keyword).abs().max() <= 1e-5


@torch.no_grad()
def test_hooks_are_gone_after_the_context():
    transformer, x = _transformer(), _inputs()
    offsets = torch.ones(len(dit_blocks(transformer)), 1, TEXT, transformer.inner_dim)
    ids = position_ids(LATENT_HW)
    before = astra_forward(transformer, img_ids=ids, **x)
    with modulate_text_stream(transformer, offsets):
        pass
    assert torch.equal(astra_forward(transformer, img_ids=ids, **x), before)


def test_mismatched_ids_and_offsets_are_reported():
    transformer, x = _transformer(), _inputs()
    with pytest.raises(ValueError, match="position ids"):
        astra_forward(transformer, img_ids=position_ids((2, 2)), **x)
    with pytest.raises(ValueError, match="another base model"):
        with modulate_text_stream(transformer, torch.zeros(2, 1, TEXT, transformer.inner_dim)):
            pass


@pytest.mark.slow
def test_compiled_blocks_do_not_recompile_per_generation():
    """The service may ``compile_repeated_blocks``: fresh hooks and offsets each generation must not
    invalidate the compiled blocks (dynamo's eager backend: same guards, no compiler needed)."""
    from torch._dynamo.utils import counters

    transformer, x = _transformer(), _inputs()
    ids = position_ids(LATENT_HW)
    torch._dynamo.reset()
    transformer.compile_repeated_blocks(backend="eager")
    graphs = []
    try:
        for seed in range(3):
            offsets = torch.randn(len(dit_blocks(transformer)), 1, TEXT, transformer.inner_dim,
                                  generator=torch.Generator().manual_seed(seed))
            with torch.no_grad(), modulate_text_stream(transformer, offsets):
                astra_forward(transformer, img_ids=ids, **x)
            graphs.append(counters["stats"]["unique_graphs"])
    finally:
        torch._dynamo.reset()
    assert graphs[0] > 0 and graphs[1] == graphs[0] and graphs[2] == graphs[0]
