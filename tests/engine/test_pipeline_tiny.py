"""The whole AstraPipeline end to end on the tiny engine (real diffusers/transformers classes)."""

import copy

import numpy as np
import pytest
import torch
from diffusers import FluxPipeline

from engine import AstraPipeline
from engine.checkpoint import AstraConfig, save_adapter
from engine.dsm import DisentangledSemanticModulation, DSMConfig
from engine.errors import EngineError, GenerationCancelled
from engine.lora import add_lora
from pose_db.scene.openpose_io import read_openpose, write_openpose
from tests.helpers.dit import randomise_lora
from tests.helpers.pipeline import FLUX_PARTS, STEPS, SUBJECTS, final_latent, random_image, two_people_pose


@pytest.fixture(scope="module")
def pipe():
    return AstraPipeline.tiny(seed=0)


def _differ(a, b):
    """Beyond the last-bit noise CPU threading may add to identical inputs."""
    return np.abs(a - b).max() > 1e-4


def test_output_says_it_is_noise(pipe):
    out = pipe("a dog", height=64, width=64, num_inference_steps=1)
    assert out.is_tiny and "noise" in out.message
    assert out.images[0].size == (64, 64)


def test_same_seed_same_image_and_seed_matters(pipe):
    kw = dict(prompt="Mia", subjects=SUBJECTS, pose=two_people_pose(), height=64, width=64, num_inference_steps=STEPS)
    a, b = (np.asarray(pipe(seed=7, **kw).images[0], dtype=np.int16) for _ in range(2))
    assert np.abs(a - b).max() <= 1
    c = np.asarray(pipe(seed=8, **kw).images[0], dtype=np.int16)
    assert np.abs(a - c).max() > 8


def test_text_only_works_with_zero_subjects(pipe):
    out = pipe("a quiet street", subjects=[], pose=None, height=64, width=96, num_inference_steps=2)
    assert out.images[0].size == (96, 64)


def test_pose_changes_the_image(pipe):
    base = final_latent(pipe, subjects=SUBJECTS, pose=two_people_pose())
    assert _differ(base, final_latent(pipe, subjects=SUBJECTS, pose=two_people_pose(x_shift=12)))
    assert _differ(base, final_latent(pipe, subjects=SUBJECTS, pose=None))


def test_subject_image_changes_the_image(pipe):
    base = final_latent(pipe, subjects=SUBJECTS, pose=two_people_pose())
    assert _differ(base, final_latent(pipe, subjects=[SUBJECTS[0], random_image(3)], pose=two_people_pose()))


def test_binding_strength_matters_only_when_a_pose_assigns_subjects(pipe):
    # No subject names in the prompt, so DSM's name binding is idle: only the region bias can act.
    kw = dict(prompt="two people shaking hands", subjects=SUBJECTS, subject_names=None)
    assert _differ(final_latent(pipe, pose=two_people_pose(), binding_strength=0.0, **kw),
                   final_latent(pipe, pose=two_people_pose(), binding_strength=1.0, **kw))
    unassigned = two_people_pose(subjects=(None, None))
    assert not _differ(final_latent(pipe, pose=unassigned, binding_strength=0.0, **kw),
                       final_latent(pipe, pose=unassigned, binding_strength=1.0, **kw))
    assert not _differ(final_latent(pipe, pose=None, binding_strength=0.0, **kw),
                       final_latent(pipe, pose=None, binding_strength=1.0, **kw))


def test_subject_names_bind_inside_dsm(pipe):
    kw = dict(subjects=SUBJECTS, subject_names=["Mia", "Leo"], pose=None)
    assert _differ(final_latent(pipe, binding_strength=0.0, **kw), final_latent(pipe, binding_strength=1.0, **kw))


def test_untrained_dsm_is_the_identity_end_to_end(pipe):
    zero = copy.copy(pipe)  # shares every module but the DSM
    dsm = copy.deepcopy(pipe.dsm)
    dsm.reset_output_projections()
    zero.register_modules(dsm=dsm)
    kw = dict(subjects=SUBJECTS, subject_names=["Mia", "Leo"], pose=two_people_pose(), output_type="latent")
    no_dsm = copy.copy(pipe)
    no_dsm.register_modules(dsm=None)
    trained = pipe(prompt="Mia and Leo", height=64, width=64, num_inference_steps=STEPS, **kw).images[0]
    untrained = zero(prompt="Mia and Leo", height=64, width=64, num_inference_steps=STEPS, **kw).images[0]
    without = no_dsm(prompt="Mia and Leo", height=64, width=64, num_inference_steps=STEPS, **kw).images[0]
    assert (untrained == without).all()
    assert (trained - without).abs().max() > 1e-4


def test_callback_sees_every_step_and_can_cancel(pipe):
    seen = []

    def record(p, step, timestep, kwargs):
        seen.append(step)
        assert kwargs["latents"].ndim == 3
        return {}

    pipe("a cat", height=64, width=64, num_inference_steps=4, callback_on_step_end=record)
    assert seen == [0, 1, 2, 3]

    def stop_after_two(p, step, timestep, kwargs):
        if step == 1:
            p.interrupt = True
        return {}

    with pytest.raises(GenerationCancelled):
        pipe("a cat", height=64, width=64, num_inference_steps=5, callback_on_step_end=stop_after_two)
    # The pipeline stays usable and the flag is reset.
    assert pipe("a cat", height=64, width=64, num_inference_steps=1).images


def test_compact_half_resolution_pose(pipe):
    half = copy.copy(pipe)
    half.settings = type(pipe.settings)(references=pipe.settings.references, pose_scale=2,
                                        max_sequence_length=pipe.settings.max_sequence_length)
    out = half("two people", subjects=SUBJECTS, pose=two_people_pose(), height=64, width=128, num_inference_steps=2)
    assert out.images[0].size == (128, 64)
    with pytest.raises(EngineError, match="multiple of 32"):
        half("two people", pose=two_people_pose(), height=80, width=64, num_inference_steps=1)


BAD = [
    (dict(prompt=""), "prompt"),
    (dict(prompt=None), "prompt"),
    (dict(height=70), "multiple of 16"),
    (dict(width=16), "between"),
    (dict(height="64"), "whole number"),
    (dict(num_inference_steps=0), "num_inference_steps"),
    (dict(num_inference_steps=2.5), "num_inference_steps"),
    (dict(guidance_scale=float("nan")), "guidance_scale"),
    (dict(seed=-1), "seed"),
    (dict(binding_strength=-0.5), "binding_strength"),
    (dict(subjects=[random_image(i) for i in range(5)]), "At most 4"),
    (dict(subjects=["not an image"]), "not an image"),
    (dict(subjects=random_image(1)), "list of images"),
    (dict(subjects=[random_image(1, (8, 8))]), "at least 16"),
    (dict(subjects=[random_image(1)], subject_names=["a", "b"]), "one name per subject"),
    (dict(pose={"people": "nope"}), "OpenPose"),
    (dict(pose="{not json"), "OpenPose"),
    (dict(pose=42), "OpenPose JSON"),
    (dict(subjects=[random_image(1)], pose=two_people_pose()), "only 1 subject"),
    (dict(callback_on_step_end="stop"), "function"),
    (dict(output_type="bogus"), "output_type"),
]


@pytest.mark.parametrize("bad, message", BAD)
def test_bad_inputs_raise_a_clear_engine_error(pipe, bad, message):
    args = dict(prompt="a cat", height=64, width=64, num_inference_steps=1)
    args.update(bad)
    with pytest.raises(EngineError, match=message):
        pipe(**args)


def test_empty_name_list_and_silent_callback_are_accepted(pipe):
    """The service passes ``subject_names=[]`` for unnamed subjects; callbacks may return None."""
    out = pipe("a cat", subjects=[random_image(1)], subject_names=[], height=64, width=64, num_inference_steps=2,
               callback_on_step_end=lambda *args: None)
    assert out.images[0].size == (64, 64)


def test_pose_scene_objects_and_other_canvas_sizes_are_fitted(pipe):
    """A PoseScene works like its JSON; a 512-px square pose is fitted onto a wide output."""

    wide = dict(subjects=SUBJECTS, height=64, width=128)
    as_json = final_latent(pipe, pose=two_people_pose(), **wide)
    assert not _differ(as_json, final_latent(pipe, pose=read_openpose(two_people_pose()), **wide))
    from pose_db.scene.transforms import fit_scene

    big = write_openpose(fit_scene(read_openpose(two_people_pose()), 512, 512))
    assert not _differ(as_json, final_latent(pipe, pose=big, **wide))  # only the layout matters, not the canvas


# ----------------------------------------------------------------------------- parity with stock FLUX

def _timesteps_of(p, **kw):
    seen = []
    p(callback_on_step_end=lambda _p, step, t, _kw: seen.append(float(t)) or {}, **kw)
    return seen


def test_text_only_generation_equals_stock_flux_pipeline(pipe):
    """No references, no pose: the same seed gives stock FluxPipeline's latent and timesteps."""
    flux = FluxPipeline(**{name: getattr(pipe, name) for name in FLUX_PARTS})
    flux.set_progress_bar_config(disable=True)
    kw = dict(prompt="a quiet street at dawn", height=64, width=96, num_inference_steps=4, guidance_scale=3.5,
              output_type="latent")
    stock_t, ours_t = [], []
    stock = flux(generator=torch.Generator().manual_seed(7), max_sequence_length=pipe.settings.max_sequence_length,
                 callback_on_step_end=lambda _p, i, t, k: stock_t.append(float(t)) or {}, **kw).images[0]
    ours = pipe(seed=7, callback_on_step_end=lambda _p, i, t, k: ours_t.append(float(t)) or {}, **kw).images[0]
    assert ours_t == stock_t
    assert (ours - stock).abs().max().item() <= 1e-5


def test_schedule_shift_counts_latent_tokens_only(pipe):
    """References and pose tokens lengthen the stream but must not change FLUX's resolution shift."""
    kw = dict(prompt="two people", num_inference_steps=4, output_type="latent")
    plain = _timesteps_of(pipe, height=64, width=96, **kw)
    conditioned = _timesteps_of(pipe, subjects=SUBJECTS, pose=two_people_pose(), height=64, width=96, **kw)
    assert conditioned == plain
    assert _timesteps_of(pipe, height=64, width=64, **kw) != plain  # the shift does follow the canvas


def test_rgba_and_grey_subjects_are_accepted(pipe):
    rgba, grey = random_image(4).convert("RGBA"), random_image(5).convert("L")
    assert pipe("two pets", subjects=[rgba, grey], height=64, width=64, num_inference_steps=1).images


# ----------------------------------------------------------------------------- loading like a GPU user

def test_from_pretrained_loads_local_folders_as_from_the_hub(pipe, tmp_path, monkeypatch):
    """Base, adapter (LoRA + DSM) and CLIP encoder from folders: same output as the live modules."""
    FluxPipeline(**{name: getattr(pipe, name) for name in FLUX_PARTS}).save_pretrained(tmp_path / "flux")
    pipe.image_encoder.save_pretrained(tmp_path / "clip")
    pipe.feature_extractor.save_pretrained(tmp_path / "clip")
    adapted = copy.deepcopy(pipe.transformer)
    add_lora(adapted, rank=4)
    randomise_lora(adapted, std=0.05)
    save_adapter(tmp_path / "adapter", AstraConfig(settings=pipe.settings), transformer=adapted, dsm=pipe.dsm)
    live = copy.copy(pipe)
    live.register_modules(transformer=adapted)

    seen = {}
    original = FluxPipeline.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.update(kwargs)
        return original(cls, *args, **kwargs)

    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    monkeypatch.setattr(FluxPipeline, "from_pretrained", classmethod(spy))
    loaded = AstraPipeline.from_pretrained(str(tmp_path / "flux"), adapter=str(tmp_path / "adapter"),
                                           image_encoder=str(tmp_path / "clip"),
                                           torch_dtype=torch.float32)  # the older name, as the service passes it
    assert seen["token"] == "hf_from_env" and seen["dtype"] == torch.float32
    loaded.set_progress_bar_config(disable=True)
    assert loaded.settings == pipe.settings and not loaded.is_tiny
    kw = dict(subjects=SUBJECTS, subject_names=["Mia", "Leo"], pose=two_people_pose())
    expected = final_latent(live, **kw)
    assert np.abs(final_latent(loaded, **kw) - expected).max() <= 1e-5
    assert _differ(expected, final_latent(pipe, **kw))  # the LoRA really loaded
    fused = AstraPipeline.from_pretrained(str(tmp_path / "flux"), adapter=str(tmp_path / "adapter"),
                                          image_encoder=str(tmp_path / "clip"), dtype=torch.float32, fuse_lora=True)
    assert np.abs(final_latent(fused, **kw) - expected).max() <= 1e-4


def test_loading_problems_are_engine_errors(pipe, tmp_path):
    with pytest.raises(EngineError, match="base model"):
        AstraPipeline.from_pretrained(str(tmp_path / "missing"), local_files_only=True)
    wrong = DisentangledSemanticModulation(DSMConfig(text_dim=32, vision_dim=32, inner_dim=32, num_layers=3, dim=8,
                                                     heads=2, layer_rank=2))
    parts = {k: v for k, v in pipe.components.items() if k != "dsm"}
    with pytest.raises(EngineError, match="num_layers 3 \\(needs 4\\)"):
        AstraPipeline(**parts, dsm=wrong)
