"""The pose ControlNet next to reference tokens (tiny ``public``/``base`` engines, CPU)."""

import numpy as np
import pytest
import torch

from engine import AstraPipeline
from engine.controlnet import UNION_POSE_MODE, ControlSettings, check_settings, control_residuals, pad_residuals
from engine.errors import EngineError
from engine.europe import StreamLayout
from engine.tiny import tiny_controlnet
from engine.transformer import astra_forward
from tests.helpers.pipeline import SUBJECTS, final_latent, two_people_pose

STEPS = 4


@pytest.fixture(scope="module")
def public():
    return AstraPipeline.tiny(seed=0, mode="public")


@pytest.fixture(scope="module")
def base():
    return AstraPipeline.tiny(seed=0, mode="base")


def _unassigned(x_shift=0):
    pose = two_people_pose(x_shift)
    for person in pose["people"]:
        person.pop("subject")
    return pose


def _step_inputs(pipe, refs=2, ref_hw=(2, 3)):
    """One DiT step's inputs for a 64x64 canvas (4x4 latent tokens) and ``refs`` references."""
    g = torch.Generator().manual_seed(0)
    channels, text = pipe.transformer.config.in_channels, pipe.transformer.config.joint_attention_dim
    layout = StreamLayout((4, 4), (ref_hw,) * refs)
    return dict(
        latents=torch.randn(1, 16, channels, generator=g),
        conditions=torch.randn(1, layout.num_tokens - 16, channels, generator=g),
        control=torch.randn(1, 16, channels, generator=g),
        prompt=torch.randn(1, 8, text, generator=g), pooled=torch.randn(1, text, generator=g),
        timestep=torch.tensor([0.6]), guidance=torch.tensor([3.5]), img_ids=layout.position_ids(),
        txt_ids=torch.zeros(8, 3), layout=layout)


def test_residuals_touch_only_the_latent_slice(public):
    """What is added after each double block is the ControlNet residual on the latent and exactly
    zero on the reference tokens, whose hidden states entering the next block are bit-identical
    with and without the ControlNet."""
    x = _step_inputs(public)
    samples, single = control_residuals(
        public.controlnet, x["latents"], x["control"], conditioning_scale=0.9, control_mode=None,
        encoder_hidden_states=x["prompt"], pooled_projections=x["pooled"], timestep=x["timestep"],
        latent_ids=x["img_ids"][:16], txt_ids=x["txt_ids"], guidance=x["guidance"])
    assert single is None and len(samples) == 2 and samples[0].shape == (1, 16, public.transformer.inner_dim)
    blocks = list(public.transformer.transformer_blocks)
    after = [*blocks[1:], public.transformer.single_transformer_blocks[0]]

    def capture(with_control):
        outs, ins = [], []
        hooks = [b.register_forward_hook(lambda m, a, k, o: outs.append(o[1]), with_kwargs=True) for b in blocks]
        hooks += [b.register_forward_pre_hook(lambda m, a, k: ins.append(k["hidden_states"]), with_kwargs=True)
                  for b in after]
        with torch.no_grad():
            astra_forward(public.transformer, x["latents"], conditions=x["conditions"],
                          encoder_hidden_states=x["prompt"], pooled_projections=x["pooled"], timestep=x["timestep"],
                          img_ids=x["img_ids"], txt_ids=x["txt_ids"], guidance=x["guidance"],
                          controlnet_block_samples=samples if with_control else None)
        for hook in hooks:
            hook.remove()
        return outs, ins

    outs, ins = capture(True)
    for out, nxt, sample in zip(outs, ins, samples):
        added = nxt - out
        assert torch.equal(added[:, 16:], torch.zeros_like(added[:, 16:]))  # references: exactly nothing
        assert torch.allclose(added[:, :16], sample, atol=1e-6) and sample.abs().max() > 1e-3
    plain_outs, plain_ins = capture(False)
    assert torch.equal(ins[0][:, 16:], plain_ins[0][:, 16:])  # refs entering block 1: unchanged
    assert not torch.allclose(ins[0][:, :16], plain_ins[0][:, :16])  # the latent did get the pose


def test_a_different_pose_changes_the_image_in_both_modes(public, base):
    assert np.abs(final_latent(public, subjects=SUBJECTS, pose=two_people_pose()) - final_latent(public, subjects=SUBJECTS, pose=two_people_pose(8))).max() \
        > 1e-3
    assert np.abs(final_latent(base, pose=_unassigned()) - final_latent(base, pose=_unassigned(8))).max() > 1e-3
    assert np.abs(final_latent(base, pose=_unassigned()) - final_latent(base)).max() > 1e-3


def test_guidance_window_and_scale(base):
    """Card default end 0.65 of 10 steps: the ControlNet runs at steps 0-5 only (diffusers' rule);
    a window that holds no step, or scale 0, leaves the text-only image."""
    calls = []
    hook = base.controlnet.register_forward_pre_hook(lambda m, a, k: calls.append(k["conditioning_scale"]),
                                                     with_kwargs=True)
    try:
        final_latent(base, pose=_unassigned(), num_inference_steps=10)
    finally:
        hook.remove()
    assert calls == [pytest.approx(0.9)] * 6
    text_only = final_latent(base, num_inference_steps=STEPS)
    for kw in (dict(control_guidance_end=0.2), dict(controlnet_conditioning_scale=0.0)):
        assert np.abs(final_latent(base, pose=_unassigned(), num_inference_steps=STEPS, **kw) - text_only).max() <= 1e-6
    weaker = final_latent(base, pose=_unassigned(), num_inference_steps=STEPS, controlnet_conditioning_scale=0.3)
    assert np.abs(weaker - final_latent(base, pose=_unassigned(), num_inference_steps=STEPS)).max() > 1e-4


def test_union_v1_controlnet_needs_pose_mode_4(base):
    union = tiny_controlnet(base.transformer, seed=3)
    union.register_to_config(num_mode=10)
    union.union = True
    union.controlnet_mode_embedder = torch.nn.Embedding(10, union.inner_dim)
    with pytest.raises(EngineError, match="needs a control_mode; pose is 4"):
        check_settings(union, 0.6, 0.0, 1.0, None)
    check_settings(union, 0.6, 0.0, 1.0, UNION_POSE_MODE)
    x = _step_inputs(base, refs=0)
    samples, _ = control_residuals(union, x["latents"], x["control"], conditioning_scale=0.6,
                                   control_mode=UNION_POSE_MODE, encoder_hidden_states=x["prompt"],
                                   pooled_projections=x["pooled"], timestep=x["timestep"],
                                   latent_ids=x["img_ids"], txt_ids=x["txt_ids"], guidance=x["guidance"])
    assert samples[0].shape == (1, 16, union.inner_dim)  # the mode token is the ControlNet's own business
    with pytest.raises(EngineError, match="no mode embedding"):
        check_settings(base.controlnet, 0.9, 0.0, 0.65, 4)


@pytest.mark.parametrize("settings, message", [
    ((2.5, 0.0, 0.65, None), "controlnet_conditioning_scale must be a number from 0 to 2"),
    ((0.9, 0.7, 0.65, None), "must be below control_guidance_end"),
    ((0.9, -0.1, 0.65, None), "control_guidance_start must be"),
    ((True, 0.0, 0.65, None), "controlnet_conditioning_scale"),
])
def test_bad_control_settings_are_engine_errors(base, settings, message):
    with pytest.raises(EngineError, match=message):
        check_settings(base.controlnet, *settings)
    with pytest.raises(EngineError, match=message):
        final_latent(base, pose=_unassigned(), **dict(zip(("controlnet_conditioning_scale", "control_guidance_start",
                                                    "control_guidance_end"), settings[:3])))


def test_pad_residuals_zero_pads_after_the_latent():
    sample = torch.ones(1, 3, 2)
    padded = pad_residuals([sample], 5)[0]
    assert padded.shape == (1, 5, 2) and padded[:, :3].eq(1).all() and padded[:, 3:].eq(0).all()
    assert pad_residuals(None, 5) is None
    with pytest.raises(ValueError):
        pad_residuals([sample], 2)


def test_card_defaults_are_the_pipeline_defaults(public):
    assert public.control == ControlSettings(0.9, 0.0, 0.65, None)
