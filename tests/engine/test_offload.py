"""CPU offload device logic, proven on the CPU by construction (no CUDA here).

``StrictOffload`` emulates ``enable_sequential_cpu_offload`` strictly: every component's weights
sit on ``meta`` and are materialised only while it runs, the hook's ``execution_device`` is what
``pipe._execution_device`` reports, and every tensor handed to a component (``forward``, and the
VAE's ``encode``/``decode``, which accelerate's hook does not see the inputs of) must already be
on that device, or the call fails as a CUDA/CPU mismatch would. Code that sends inputs to a
component's ``.device`` or to its parameters' device sends them to ``meta`` and fails.
"""

from __future__ import annotations

import functools

import pytest
import torch
from accelerate.hooks import ModelHook, add_hook_to_module
from PIL import Image

from engine.conditioning import encode_tokens
from engine.pipeline import AstraPipeline

EXECUTION = torch.device("cpu")


def _pose() -> dict:
    keypoints = []
    for k in range(18):
        keypoints += [16 + (k % 4) * 8, 6 + k * 3, 1]
    return {"canvas_width": 64, "canvas_height": 64, "people": [{"pose_keypoints_2d": keypoints, "subject": 0}]}


class DeviceMismatch(RuntimeError):
    pass


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


class StrictOffload(ModelHook):
    """Weights on ``meta`` between calls; inputs must arrive on the execution device."""

    def __init__(self, name: str, module: torch.nn.Module, calls: list) -> None:
        self.name, self.calls = name, calls
        self.execution_device = EXECUTION
        self.weights = {**dict(module.named_parameters(remove_duplicate=False)),
                        **dict(module.named_buffers(remove_duplicate=False))}
        self.weights = {key: value.detach().clone() for key, value in self.weights.items()}

    def init_hook(self, module):
        return module.to("meta")

    def check(self, *args, **kwargs) -> None:
        devices = {t.device for t in _tensors([args, kwargs])}
        self.calls.append((self.name, devices))
        if devices - {self.execution_device}:
            raise DeviceMismatch(f"{self.name}: inputs on {sorted(map(str, devices))}, "
                                 f"execution device {self.execution_device}")

    def pre_forward(self, module, *args, **kwargs):
        self.check(*args, **kwargs)
        for key, value in self.weights.items():
            owner_name, _, leaf = key.rpartition(".")
            owner = module.get_submodule(owner_name) if owner_name else module
            if leaf in owner._parameters:
                owner._parameters[leaf] = torch.nn.Parameter(value, requires_grad=False)
            else:
                owner._buffers[leaf] = value
        return args, kwargs

    def post_forward(self, module, output):
        module.to("meta")
        return output


def strict_offload(pipe: AstraPipeline) -> list:
    """Install :class:`StrictOffload` on every model of ``pipe``; returns the call record."""
    calls: list = []
    for name, component in pipe.components.items():
        if not isinstance(component, torch.nn.Module):
            continue
        hook = StrictOffload(name, component, calls)
        add_hook_to_module(component, hook)
        if name == "vae":  # encode/decode run accelerate's pre_forward without their inputs: check them here
            for method in ("encode", "decode"):
                original = getattr(component, method)

                @functools.wraps(original)
                def checked(*args, _original=original, _hook=hook, _module=component, **kwargs):
                    _hook.check(*args, **kwargs)
                    output = _original(*args, **kwargs)
                    _hook.post_forward(_module, None)
                    return output

                setattr(component, method, checked)
    return calls


def _generate(pipe: AstraPipeline, **kwargs) -> torch.Tensor:
    subjects = [Image.new("RGB", (48, 64), (200, 40, 40)), Image.new("RGB", (64, 48), (40, 40, 200))]
    return pipe("Mia waves at Leo", subjects=subjects, subject_names=["Mia", "Leo"], pose=_pose(), height=64,
                width=64, num_inference_steps=2, seed=3, output_type="latent", **kwargs).images[0]


@pytest.fixture(scope="module")
def resident_latents():
    return _generate(AstraPipeline.tiny(seed=0))


def test_the_strict_stub_catches_inputs_sent_to_the_components_device():
    """The stub can fail: the pre-fix code path (pixels to ``vae.device``) is a mismatch under it."""
    pipe = AstraPipeline.tiny(seed=0)
    strict_offload(pipe)
    assert pipe.vae.device.type == "meta" and pipe._execution_device == EXECUTION
    with pytest.raises(DeviceMismatch, match="vae"):
        encode_tokens(pipe.vae, Image.new("RGB", (32, 32)))  # device=None: vae.device, as before the fix
    tokens, _ = encode_tokens(pipe.vae, Image.new("RGB", (32, 32)), device=pipe._execution_device)
    assert tokens.device == EXECUTION


@pytest.mark.parametrize("binding_attention", ["dense", "flex"])
def test_generation_under_offload_puts_every_input_on_the_execution_device(resident_latents, binding_attention):
    """References, pose map, CLIP-vision pixels, DSM and the DiT all get execution-device inputs,
    and the offloaded run computes what the resident one does."""
    pipe = AstraPipeline.tiny(seed=0)
    pipe.binding_attention = binding_attention
    calls = strict_offload(pipe)
    latents = _generate(pipe)
    called = {name for name, _ in calls}
    assert {"text_encoder", "text_encoder_2", "image_encoder", "dsm", "transformer", "vae"} <= called
    assert sum(name == "vae" and bool(devices) for name, devices in calls) == 3  # 2 references + pose map
    assert all(devices <= {EXECUTION} for _, devices in calls)
    torch.testing.assert_close(latents, resident_latents, rtol=0, atol=1e-5)


def test_call_ends_by_freeing_the_model_hooks(monkeypatch):
    pipe = AstraPipeline.tiny(seed=0)
    freed = []
    monkeypatch.setattr(pipe, "maybe_free_model_hooks", lambda: freed.append(True))
    pipe("a dog", height=64, width=64, num_inference_steps=1, output_type="latent")
    assert freed == [True]
