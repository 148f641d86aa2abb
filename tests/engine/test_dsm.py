"""DSM: identity when untrained, a real effect when trained, bound to names when asked."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import FluxTransformer2DModel

from engine.binding import BIAS_PER_STRENGTH, name_binding_bias
from engine.checkpoint import AstraConfig, build_dsm
from engine.dsm import DisentangledSemanticModulation, DSMConfig, check_dsm_fits, count_parameters, num_parameters
from engine.errors import EngineError
from engine.europe import position_ids
from engine.transformer import astra_forward, modulate_text_stream

TEXT, LATENT_HW = 6, (3, 4)
CONFIG = DSMConfig(text_dim=24, vision_dim=12, inner_dim=32, num_layers=4, dim=16, heads=4, layer_rank=4)


def _transformer():
    torch.manual_seed(0)
    return FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=24, pooled_projection_dim=8, guidance_embeds=True,
        axes_dims_rope=(4, 6, 6)).eval()


def _inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    return dict(
        latents=torch.randn(1, LATENT_HW[0] * LATENT_HW[1], 16, generator=g),
        encoder_hidden_states=torch.randn(1, TEXT, 24, generator=g),
        pooled_projections=torch.randn(1, 8, generator=g),
        timestep=torch.tensor([0.5]), guidance=torch.tensor([3.5]), txt_ids=torch.zeros(TEXT, 3))


def _vision(seed, n=2):
    return torch.randn(1, n, 5, CONFIG.vision_dim, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def _generate(transformer, dsm, vision, x, subject_bias=None):
    """One DiT forward with DSM applied as the pipeline applies it."""
    offsets = dsm(x["encoder_hidden_states"], vision, subject_bias)
    modulated = dict(x, encoder_hidden_states=x["encoder_hidden_states"] + offsets.global_offset)
    with modulate_text_stream(transformer, offsets.layer_offsets):
        return astra_forward(transformer, conditions=None, img_ids=position_ids(LATENT_HW), **modulated)


def _trained(seed=3):
    torch.manual_seed(seed)
    dsm = DisentangledSemanticModulation(CONFIG)
    with torch.no_grad():
        for p in (dsm.to_global_offset.weight, dsm.layer_up):
            p.normal_(std=0.5)
    return dsm


def test_untrained_dsm_is_exactly_the_identity():
    transformer, x = _transformer(), _inputs()
    dsm = DisentangledSemanticModulation(CONFIG)
    offsets = dsm(x["encoder_hidden_states"], _vision(0))
    assert not offsets.global_offset.any() and not offsets.layer_offsets.any()
    with torch.no_grad():
        plain = astra_forward(transformer, conditions=None, img_ids=position_ids(LATENT_HW), **x)
    assert torch.equal(_generate(transformer, dsm, _vision(0), x), plain)


def test_trained_dsm_changes_output_and_follows_the_reference():
    transformer, x = _transformer(), _inputs()
    dsm = _trained()
    with torch.no_grad():
        plain = astra_forward(transformer, conditions=None, img_ids=position_ids(LATENT_HW), **x)
    a = _generate(transformer, dsm, _vision(0), x)
    b = _generate(transformer, dsm, _vision(1), x)
    assert (a - plain).abs().max() > 1e-3
    assert (a - b).abs().max() > 1e-3


def test_offsets_have_the_documented_shapes_and_gradients_flow():
    dsm = DisentangledSemanticModulation(CONFIG)
    text = torch.randn(2, TEXT, CONFIG.text_dim)
    offsets = dsm(text, torch.randn(2, 3, 5, CONFIG.vision_dim))
    assert offsets.global_offset.shape == (2, TEXT, CONFIG.text_dim)
    assert offsets.layer_offsets.shape == (CONFIG.num_layers, 2, TEXT, CONFIG.inner_dim)
    (offsets.global_offset.sum() + offsets.layer_offsets.sum()).backward()
    # Zero-initialised outputs still learn: their own gradients are non-zero.
    assert dsm.to_global_offset.weight.grad.abs().sum() > 0
    assert dsm.layer_up.grad.abs().sum() > 0


def test_subject_index_embedding_keeps_subjects_apart():
    """Swapping two references changes the offsets: each carries its subject index."""
    dsm = _trained()
    text = torch.randn(1, TEXT, CONFIG.text_dim)
    vision = _vision(0)
    with torch.no_grad():
        a = dsm(text, vision).global_offset
        b = dsm(text, vision.flip(1)).global_offset
    assert (a - b).abs().max() > 1e-4


def test_name_binding_routes_a_named_token_to_its_own_reference():
    dsm = _trained()
    text = torch.randn(1, TEXT, CONFIG.text_dim)
    names = np.zeros((TEXT, 2), dtype=bool)
    names[1, 0] = True   # token 1 names subject 0
    bias = name_binding_bias(names, strength=1.0)
    assert bias[0, 1].tolist() == [0.0, -BIAS_PER_STRENGTH] and not bias[0, 0].any()
    vision = _vision(0)
    other = vision.clone()
    other[:, 1] += 5.0   # change subject 1 only
    with torch.no_grad():
        bound_a, bound_b = dsm(text, vision, bias).global_offset, dsm(text, other, bias).global_offset
        free_a, free_b = dsm(text, vision).global_offset, dsm(text, other).global_offset
    # Unbound, token 1 sees subject 1; bound to subject 0, it barely does.
    assert (free_a[0, 1] - free_b[0, 1]).abs().max() > 100 * (bound_a[0, 1] - bound_b[0, 1]).abs().max()
    # Tokens that name nobody are untouched by the binding.
    torch.testing.assert_close(bound_a[0, 0], free_a[0, 0])


def test_too_many_references_is_refused():
    dsm = DisentangledSemanticModulation(CONFIG)
    with pytest.raises(ValueError, match="at most 4"):
        dsm(torch.randn(1, TEXT, CONFIG.text_dim), torch.randn(1, 5, 2, CONFIG.vision_dim))


def test_a_dsm_for_another_base_or_encoder_is_refused():
    transformer, vision = _transformer(), SimpleNamespace(config=SimpleNamespace(hidden_size=CONFIG.vision_dim))
    check_dsm_fits(CONFIG, transformer, vision)  # the sizes this module's DiT and encoder have
    other = DSMConfig(**{**CONFIG.to_dict(), "inner_dim": 48, "num_layers": 3, "vision_dim": 20})
    dsm = build_dsm(AstraConfig(dsm=other), DisentangledSemanticModulation(other).state_dict())
    with pytest.raises(EngineError, match="inner_dim 48 \\(needs 32\\), num_layers 3 \\(needs 4\\), "
                                          "vision_dim 20 \\(needs 12\\); use the base model and CLIP"):
        check_dsm_fits(dsm.config, transformer, vision)
    with pytest.raises(EngineError, match="text_dim 24 \\(needs 32\\).*base model \\(you/base\\)"):
        check_dsm_fits(CONFIG, FluxTransformer2DModel(
            patch_size=1, in_channels=16, num_layers=2, num_single_layers=2, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=8, axes_dims_rope=(4, 6, 6)),
            trained_on="you/base")


def test_parameter_count_at_flux_size():
    with torch.device("meta"):
        dsm = DisentangledSemanticModulation(DSMConfig())
    c = DSMConfig()
    expected = (2 * c.text_dim + c.text_dim * c.dim + c.dim          # text norm + query
                + 2 * c.vision_dim + 2 * (c.vision_dim * c.dim + c.dim)  # vision norm + key/value
                + c.max_subjects * c.dim + c.dim * c.dim + c.dim      # subject index + attn out
                + c.dim * c.text_dim + c.text_dim                      # global offset
                + c.dim * c.num_layers * c.layer_rank + c.num_layers * c.layer_rank
                + c.num_layers * (c.layer_rank * c.inner_dim + c.inner_dim))
    assert count_parameters(dsm) == expected == num_parameters(c) == 22_661_696
    assert all(p.is_meta for p in dsm.parameters())  # counted without allocating FLUX-size weights


@pytest.mark.parametrize("config", [CONFIG, DSMConfig(text_dim=40, vision_dim=8, inner_dim=24, num_layers=3, dim=12,
                                                      heads=3, layer_rank=5, max_subjects=2)])
def test_parameter_count_from_config_matches_the_module(config):
    assert num_parameters(config) == count_parameters(DisentangledSemanticModulation(config))
