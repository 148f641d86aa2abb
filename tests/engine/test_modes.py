"""Engine modes: each feeds the DiT only the token kinds its weights were trained on."""

import math

import numpy as np
import pytest
import torch
from diffusers import FluxControlNetModel, FluxPipeline
from safetensors.torch import save_file

from engine import AstraPipeline, modes
from engine.errors import EngineError
from engine.europe import position_ids
from engine.lora import has_lora
from engine.tiny import REFERENCE_SIZES, tiny_uno_state_dict
from tests.helpers.pipeline import FLUX_PARTS, SUBJECTS, final_latent, random_image, two_people_pose

ALL = ("astra", "public", "base")


@pytest.fixture(scope="module")
def pipes():
    return {mode: AstraPipeline.tiny(seed=0, mode=mode) for mode in ALL}


def _unassigned(x_shift=0):
    pose = two_people_pose(x_shift)
    for person in pose["people"]:
        person.pop("subject")
    return pose


def _stream_of(pipe, **kw):
    seen = {}

    def hook(module, args, kwargs):
        seen["tokens"] = kwargs["hidden_states"].shape[1]
        seen["img_ids"] = kwargs["img_ids"].clone()

    handle = pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        final_latent(pipe, num_inference_steps=1, **kw)
    finally:
        handle.remove()
    return seen


def test_each_mode_builds_only_the_stream_its_weights_know(pipes):
    """64x64 canvas: 4x4 latent tokens; two references (long side 32 px: 2x1 and 1x2 tokens, the
    UNO resize at tiny scale); a full-resolution pose map: 16 more tokens."""
    refs = [(h // 16, w // 16) for w, h in ((32, 24), (16, 32))]
    assert REFERENCE_SIZES.multi == 32
    latent, ref_tokens = 16, sum(h * w for h, w in refs)
    expected = {"astra": latent + ref_tokens + latent, "public": latent + ref_tokens, "base": latent}
    for mode, pipe in pipes.items():
        kw = dict(subjects=SUBJECTS, pose=two_people_pose()) if mode != "base" else dict(pose=_unassigned())
        seen = _stream_of(pipe, **kw)
        assert seen["tokens"] == expected[mode], mode
        assert modes.stream_kinds(mode, num_subjects=2, has_pose=True) == modes.SPECS[mode].stream
    public_ids = _stream_of(pipes["public"], subjects=SUBJECTS, pose=two_people_pose())["img_ids"]
    assert torch.equal(public_ids, position_ids((4, 4), refs))  # UnoPE: EURoPE's reference ids are UNO's


def test_stream_guard_refuses_what_a_mode_never_saw():
    with pytest.raises(RuntimeError, match="never saw"):
        modes.check_stream("public", num_references=1, has_pose_tokens=True)
    with pytest.raises(RuntimeError, match="never saw"):
        modes.check_stream("base", num_references=1, has_pose_tokens=False)
    modes.check_stream("astra", num_references=2, has_pose_tokens=True)


def test_base_mode_refuses_subjects_and_says_what_to_load(pipes):
    with pytest.raises(EngineError, match="--uno-lora bytedance-research/UNO"):
        pipes["base"]("two friends", subjects=SUBJECTS[:1], height=64, width=64, num_inference_steps=1)
    no_controlnet = AstraPipeline(**{k: getattr(pipes["base"], k) for k in FLUX_PARTS}, mode="base")
    assert no_controlnet.mode == "base" and no_controlnet.controlnet is None
    with pytest.raises(EngineError, match="--controlnet"):
        no_controlnet("two friends", pose=_unassigned(), height=64, width=64, num_inference_steps=1)
    with pytest.raises(EngineError, match="No ControlNet is loaded"):
        no_controlnet("two friends", height=64, width=64, num_inference_steps=1, controlnet_conditioning_scale=0.5)
    assert no_controlnet("two friends", height=64, width=64, num_inference_steps=1).images


def test_components_a_mode_was_not_trained_with_are_refused(pipes):
    parts = {k: getattr(pipes["astra"], k) for k in FLUX_PARTS}
    with pytest.raises(EngineError, match="has no DSM"):
        AstraPipeline(**parts, dsm=pipes["astra"].dsm, image_encoder=pipes["astra"].image_encoder, mode="public")
    with pytest.raises(EngineError, match="takes the pose as tokens"):
        AstraPipeline(**parts, dsm=pipes["astra"].dsm, image_encoder=pipes["astra"].image_encoder,
                      controlnet=pipes["base"].controlnet)
    with pytest.raises(EngineError, match="Unknown engine mode"):
        AstraPipeline.tiny(mode="uno")
    with pytest.raises(EngineError, match="not both"):
        modes.mode_for(adapter=True, uno_lora=True)


def test_public_mode_subjects_reach_the_model_and_binding_works(pipes):
    public = pipes["public"]
    assert has_lora(public.transformer) and public.dsm is None and public.mode == "public"
    with_refs = final_latent(public, subjects=SUBJECTS, pose=two_people_pose())
    assert np.abs(with_refs - final_latent(public, subjects=[random_image(3), SUBJECTS[1]], pose=two_people_pose())).max() > 1e-3
    # Binding as in astra mode: it matters once the pose assigns subjects, and not otherwise.
    assert np.abs(with_refs - final_latent(public, subjects=SUBJECTS, pose=two_people_pose(), binding_strength=0.0)).max() > 1e-4
    free = two_people_pose(subjects=(None, None))
    assert np.abs(final_latent(public, subjects=SUBJECTS, pose=free) -
                  final_latent(public, subjects=SUBJECTS, pose=free, binding_strength=0.0)).max() <= 1e-6


def test_public_mode_binding_bias_blocks_each_reference_outside_its_skeleton(pipes):
    seen = {}
    handle = pipes["public"].transformer.register_forward_pre_hook(
        lambda m, a, k: seen.update(bias=k["joint_attention_kwargs"]["attention_mask"]), with_kwargs=True)
    try:
        final_latent(pipes["public"], subjects=SUBJECTS, pose=two_people_pose(), num_inference_steps=1)
    finally:
        handle.remove()
    text = pipes["public"].settings.max_sequence_length
    bias = seen["bias"][0, 0]
    assert bias.shape == (text + 16 + 4, text + 16 + 4)  # no pose tokens in public mode
    ref0 = slice(text + 16, text + 18)
    blocked = (bias[text:text + 16, ref0] < 0).any(dim=1)
    assert 0 < int(blocked.sum()) < 16  # some latent tokens (outside subject 0's skeleton) are cut off


def test_fused_tiny_uno_lora_equals_unfused(pipes):
    fused = AstraPipeline.tiny(seed=0, mode="public", fuse_lora=True)
    assert not has_lora(fused.transformer)
    kw = dict(subjects=SUBJECTS, pose=two_people_pose())
    assert np.abs(final_latent(fused, **kw) - final_latent(pipes["public"], **kw)).max() <= 1e-4


def test_uno_schedule_is_unos_own_formula(pipes):
    """``schedule="uno"``: UNO's get_schedule(n, (W//8)*(H//8)//256) with its time_shift, sigma 1."""
    from dataclasses import replace

    pipe = pipes["public"]
    steps, height, width = 4, 256, 512
    pipe.settings = replace(pipe.settings, schedule="uno")
    try:
        seen = []
        pipe("a street", height=height, width=width, num_inference_steps=steps, output_type="latent",
             callback_on_step_end=lambda _p, i, t, k: seen.append(float(t)) or {})
    finally:
        pipe.settings = replace(pipe.settings, schedule="flux")
    seq = (width // 8) * (height // 8) // 256
    mu = 0.5 + (1.15 - 0.5) / (4096 - 256) * (seq - 256)
    unos = [math.exp(mu) / (math.exp(mu) + (1 / t - 1)) * 1000 for t in np.linspace(1, 0, steps + 1)[:-1]]
    assert seen == pytest.approx(unos, rel=1e-5)
    flux = []
    pipe("a street", height=height, width=width, num_inference_steps=steps, output_type="latent",
         callback_on_step_end=lambda _p, i, t, k: flux.append(float(t)) or {})
    assert flux != pytest.approx(unos, rel=1e-3)


def test_from_pretrained_picks_the_mode_from_what_it_loads(pipes, tmp_path):
    """Folders as a GPU user has them: FLUX, UNO's dit_lora.safetensors, a ControlNet."""
    public = pipes["public"]
    FluxPipeline(**{k: getattr(pipes["astra"], k) for k in FLUX_PARTS}).save_pretrained(tmp_path / "flux")
    public.controlnet.save_pretrained(tmp_path / "FLUX.1-dev-ControlNet-Union-Pro-2.0")
    from engine.tiny import tiny_components

    save_file(tiny_uno_state_dict(tiny_components(0)["transformer"], seed=0), str(tmp_path / "dit_lora.safetensors"))
    loaded = AstraPipeline.from_pretrained(str(tmp_path / "flux"), uno_lora=str(tmp_path / "dit_lora.safetensors"),
                                           controlnet=str(tmp_path / "FLUX.1-dev-ControlNet-Union-Pro-2.0"), dtype=torch.float32)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.mode == "public" and isinstance(loaded.controlnet, FluxControlNetModel)
    assert loaded.checkpoints["uno_lora"].endswith("dit_lora.safetensors") and loaded.control == public.control
    assert loaded.settings.references.multi == 320  # UNO's reference size at full scale
    loaded.settings = public.settings  # the tiny engine's reference sizes and T5 length
    kw = dict(subjects=SUBJECTS, pose=two_people_pose())
    assert np.abs(final_latent(loaded, **kw) - final_latent(public, **kw)).max() <= 1e-5
    base = AstraPipeline.from_pretrained(str(tmp_path / "flux"), controlnet=str(tmp_path / "FLUX.1-dev-ControlNet-Union-Pro-2.0"),
                                         dtype=torch.float32)
    assert base.mode == "base" and "uno_lora" not in base.checkpoints
    # The optional parts load first: a missing ControlNet is reported even though the base is missing too.
    with pytest.raises(modes.WeightsUnavailable, match="controlnet") as missing:
        AstraPipeline.from_pretrained(str(tmp_path / "no-flux"), controlnet=str(tmp_path / "no-controlnet"),
                                      local_files_only=True)
    assert missing.value.part == "controlnet"
    with pytest.raises(modes.WeightsUnavailable) as missing:
        AstraPipeline.from_pretrained(str(tmp_path / "no-flux"), uno_lora=str(tmp_path / "no-uno"))
    assert missing.value.part == "uno_lora"
    with pytest.raises(EngineError, match="without a ControlNet"):
        AstraPipeline.from_pretrained(str(tmp_path / "flux"), adapter=str(tmp_path), controlnet="x/y")


def test_app_picks_astra_then_public_then_base_and_says_why():
    import app

    astra, why = app.engine_config(app.parse_args(["--adapter", "me/astra"]))
    assert astra.adapter == "me/astra" and why.startswith("astra mode") and "not used" in why
    public, why = app.engine_config(app.parse_args([]))
    assert (public.uno_lora, public.controlnet) == ("bytedance-research/UNO",
                                                    "Shakker-Labs/FLUX.1-dev-ControlNet-Union-Pro-2.0")
    assert why.startswith("public mode") and "non-commercial" in why
    base, why = app.engine_config(app.parse_args(["--uno-lora", "none"]))
    assert base.uno_lora is None and base.controlnet and why == \
        "base mode: --uno-lora is off, so FLUX.1-dev alone (text and pose)"
    no_uno, why = app.fallback_config(public, modes.WeightsUnavailable("uno_lora", "not in the cache"))
    assert no_uno.uno_lora is None and no_uno.controlnet and "UNO's LoRA did not load (not in the cache)" in why
    plain, why = app.fallback_config(public, modes.WeightsUnavailable("controlnet", "gated"))
    assert (plain.uno_lora, plain.controlnet) == (None, None) and "text only" in why


def test_service_reports_mode_and_checkpoints():
    from engine.service import EngineService

    info = EngineService.tiny(mode="public").info()
    assert (info.mode, info.controlnet, info.control_defaults) == ("public", "tiny", (0.9, 0.0, 0.65))
    assert EngineService.tiny().info().mode == "astra" and EngineService.unavailable("x").info().mode is None
