"""The resident engine service on the tiny engine and on a real load from local folders.

No GPU here: out-of-memory is simulated by a DiT block raising ``torch.cuda.OutOfMemoryError``
mid-generation, the way a real one surfaces.
"""

import threading
import time

import numpy as np
import pytest
import torch
from diffusers import FluxPipeline
from PIL import Image

from engine import AstraPipeline
from engine.checkpoint import AstraConfig, save_adapter
from engine.errors import EngineError, GenerationCancelled
from engine.lora import add_lora, has_lora
from engine.request import EngineInfo, GenerationRequest, GenerationResult
from engine.service import EngineConfig, EngineService
from engine.settings import AstraSettings
from engine.tiny import REFERENCE_SIZES, TEXT_TOKENS, tiny_components
from tests.helpers.dit import randomise_lora

STEPS = 2


def _image(seed, size=(48, 40)):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _request(**kw):
    args = dict(prompt="Mia waving", subjects=[_image(1)], subject_names=["Mia"], height=64, width=64,
                num_inference_steps=STEPS, seed=5)
    args.update(kw)
    return GenerationRequest(**args)


def _pixels(result):
    return np.asarray(result.image, dtype=np.int16)


@pytest.fixture(scope="module")
def service():
    return EngineService.tiny(seed=0)


@pytest.fixture(scope="module")
def reference(service):
    """The image of the default request on a fresh service: later runs must reproduce it."""
    return _pixels(service.generate(_request()))


def test_tiny_service_generates_and_says_it_is_noise(service, reference):
    info = service.info()
    assert isinstance(info, EngineInfo) and (info.kind, info.device, info.dtype) == ("tiny", "cpu", "float32")
    assert "noise" in info.message
    result = service.generate(_request())
    assert isinstance(result, GenerationResult) and result.image.size == (64, 64)
    assert result.seed == 5 and result.elapsed_s > 0 and result.info == info
    assert np.array_equal(_pixels(result), reference)
    assert not np.array_equal(_pixels(service.generate(_request(seed=6))), reference)


def test_progress_reports_every_step(service):
    calls = []
    text_only = _request(prompt="a dog", subjects=[], subject_names=[])
    service.generate(text_only, progress=lambda step, total: calls.append((step, total)))
    assert calls == [(step, STEPS) for step in range(STEPS + 1)]


def test_cancel_between_steps_then_usable(service, reference):
    cancel, calls = threading.Event(), []

    def progress(step, total):
        calls.append(step)
        if step == 1:
            cancel.set()

    with pytest.raises(GenerationCancelled):
        service.generate(_request(), progress=progress, cancel=cancel)
    assert calls == [0, 1]  # stopped before step 2
    assert not service.pipe.interrupt and not service.busy
    assert np.array_equal(_pixels(service.generate(_request())), reference)


def test_cancel_before_start_runs_nothing(service):
    cancel, calls = threading.Event(), []
    cancel.set()
    with pytest.raises(GenerationCancelled):
        service.generate(_request(), progress=lambda s, t: calls.append(s), cancel=cancel)
    assert calls == []


def _hooks(pipe):
    return sum(len(block._forward_pre_hooks) for block in
               [*pipe.transformer.transformer_blocks, *pipe.transformer.single_transformer_blocks])


def test_out_of_memory_becomes_a_clear_error_and_the_service_stays_usable(service, reference, monkeypatch):
    block = service.pipe.transformer.single_transformer_blocks[0]
    original, calls = block.forward, []

    def forward(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second denoising step, inside the DSM hooks' scope
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(*args, **kwargs)

    monkeypatch.setattr(block, "forward", forward)
    with pytest.raises(EngineError, match="Out of memory at 64x64 with 1 subject") as caught:
        service.generate(_request())
    assert not isinstance(caught.value, GenerationCancelled)
    monkeypatch.undo()
    assert _hooks(service.pipe) == 0 and not service.busy  # nothing of the failed job is left behind
    assert np.array_equal(_pixels(service.generate(_request())), reference)


def test_unexpected_failures_become_engine_errors(service, reference, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("something inside broke")

    monkeypatch.setattr(service.pipe, "encode_prompt", broken)
    with pytest.raises(EngineError, match="Generation failed \\(ValueError: something inside broke\\)"):
        service.generate(_request())
    monkeypatch.undo()
    assert np.array_equal(_pixels(service.generate(_request())), reference)


def test_bad_requests_raise_engine_errors(service):
    with pytest.raises(EngineError, match="16"):
        service.generate(_request(height=70))
    with pytest.raises(EngineError, match="prompt"):
        service.generate(_request(prompt="  "))
    with pytest.raises(EngineError, match="GenerationRequest"):
        service.generate({"prompt": "a dog"})


def test_one_job_at_a_time_and_waiting_jobs_can_be_cancelled(service):
    events, release = [], threading.Event()

    def first_progress(step, total):
        events.append(("first", step))
        if step == 1:
            release.wait(10)  # hold the engine until the other jobs are queued

    first = threading.Thread(target=service.generate, args=(_request(),), kwargs=dict(progress=first_progress))
    first.start()
    deadline = time.monotonic() + 30
    while ("first", 1) not in events and time.monotonic() < deadline:
        time.sleep(0.01)
    assert service.busy

    # A waiting job that is cancelled leaves the queue without running.
    cancel, outcome = threading.Event(), {}

    def waiting():
        try:
            service.generate(_request(), progress=lambda s, t: events.append(("cancelled", s)), cancel=cancel)
        except GenerationCancelled as error:
            outcome["error"] = error

    waiter = threading.Thread(target=waiting)
    waiter.start()
    second = threading.Thread(target=service.generate, args=(_request(seed=9),),
                              kwargs=dict(progress=lambda s, t: events.append(("second", s))))
    second.start()
    time.sleep(0.2)
    cancel.set()
    waiter.join(5)
    assert "waiting" in str(outcome["error"])
    release.set()
    first.join(30)
    second.join(30)
    assert [e for e in events if e[0] == "cancelled"] == []
    assert events == [("first", s) for s in range(STEPS + 1)] + [("second", s) for s in range(STEPS + 1)]


def test_unavailable_engine_explains_itself():
    service = EngineService.unavailable("Started with --engine none.")
    assert service.info().kind == "none" and service.info().message == "Started with --engine none."
    with pytest.raises(EngineError, match="Started with --engine none"):
        service.generate(_request())


def test_configs_are_checked_before_loading(tmp_path):
    with pytest.raises(EngineError, match="dtype"):
        EngineService.load(EngineConfig(dtype="float8"))
    with pytest.raises(EngineError, match="offload"):
        EngineService.load(EngineConfig(offload="disk"))
    with pytest.raises(EngineError, match="not a device"):
        EngineService.load(EngineConfig(device="gpu:0"))
    with pytest.raises(EngineError, match="needs a GPU"):
        EngineService.load(EngineConfig(device="cpu", offload="model"))
    with pytest.raises(EngineError, match="adapter .* neither an existing folder"):
        EngineService.load(EngineConfig(device="cpu", adapter=str(tmp_path / "missing")))
    if not torch.cuda.is_available():
        with pytest.raises(EngineError, match="No CUDA GPU"):
            EngineService.load(EngineConfig())
        with pytest.raises(EngineError, match="sees no CUDA GPU"):
            EngineService.load(EngineConfig(device="cuda"))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A tiny FLUX saved as a diffusers folder, a CLIP vision folder and an ASTRA adapter for it."""
    root = tmp_path_factory.mktemp("engine")
    parts = tiny_components(seed=0)
    dsm, vision, processor = parts.pop("dsm"), parts.pop("image_encoder"), parts.pop("feature_extractor")
    FluxPipeline(**parts).save_pretrained(root / "base")
    vision.save_pretrained(root / "clip")
    processor.save_pretrained(root / "clip")
    add_lora(parts["transformer"], rank=4)
    randomise_lora(parts["transformer"], std=0.05)
    settings = AstraSettings(references=REFERENCE_SIZES, max_sequence_length=TEXT_TOKENS)
    save_adapter(root / "adapter", AstraConfig(settings=settings), parts["transformer"], dsm)
    return root


def _load(folders, **kw):
    config = dict(base=str(folders / "base"), adapter=str(folders / "adapter"), clip=str(folders / "clip"),
                  dtype="float32", device="cpu")
    config.update(kw)
    return EngineService.load(EngineConfig(**config))


def test_load_from_folders_with_fused_or_unfused_lora(folders):
    fused = _load(folders)
    info = fused.info()
    assert (info.kind, info.device, info.dtype) == ("real", "cpu", "float32")
    assert info.base == str(folders / "base") and info.adapter == str(folders / "adapter")
    assert "LoRA fused" in info.message
    assert not has_lora(fused.pipe.transformer) and fused.pipe.dsm is not None
    unfused = _load(folders, fuse_lora=False)
    assert has_lora(unfused.pipe.transformer)
    request = _request(subjects=[_image(1), _image(2)], subject_names=["Mia", "Leo"])
    a, b = _pixels(fused.generate(request)), _pixels(unfused.generate(request))
    assert np.abs(a - b).max() <= 1  # fusing changes rounding only
    plain = _load(folders, adapter=None)
    assert plain.pipe.dsm is None and plain.info().adapter is None


def test_load_failures_are_engine_errors(folders, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EngineError, match="Could not load"):
        _load(folders, base=str(tmp_path / "empty"))


@pytest.mark.slow
def test_compiled_blocks_give_the_same_images(service):
    # The eager backend runs TorchDynamo's capture without a C++ toolchain: CPU-test friendly.
    config = EngineConfig(base="tiny", dtype="float32", fuse_lora=False, device="cpu", compile=True,
                          compile_backend="eager")
    compiled = EngineService.from_pipeline(AstraPipeline.tiny(seed=0), config)
    assert "compiled blocks" in compiled.info().message
    blocks = [*compiled.pipe.transformer.transformer_blocks, *compiled.pipe.transformer.single_transformer_blocks]
    assert all(block._compiled_call_impl is not None for block in blocks)
    request = _request(num_inference_steps=1)  # one step: one capture per block
    assert np.abs(_pixels(compiled.generate(request)) - _pixels(service.generate(request))).max() <= 1


def _posed_request(**kw):
    keypoints = []
    for k in range(18):
        keypoints += [12 + (k % 4) * 6, 6 + k * 3, 1]
    pose = {"canvas_width": 64, "canvas_height": 64, "people": [{"pose_keypoints_2d": keypoints, "subject": 0}]}
    return _request(subjects=[_image(1), _image(2)], subject_names=["Mia", "Leo"], pose=pose, **kw)


def test_new_options_are_checked_before_loading():
    with pytest.raises(EngineError, match="quantize must be one of"):
        EngineService.load(EngineConfig(quantize="int4"))
    with pytest.raises(EngineError, match="binding_attention must be one of"):
        EngineService.load(EngineConfig(binding_attention="sparse"))
    with pytest.raises(EngineError, match="fuse_lora=True"):
        EngineService.load(EngineConfig(quantize="fp8", fuse_lora=False, adapter="owner/adapter"))


def test_flex_and_dense_binding_give_the_same_image(service):
    """The service's binding_attention switch: the FlexAttention ids and the dense mask render the
    same posed two-subject image (the tiny engine, fp32, CPU)."""
    images, latents = {}, {}
    request = _posed_request()
    args = dict(prompt=request.prompt, subjects=request.subjects, subject_names=request.subject_names,
                pose=request.pose, height=64, width=64, num_inference_steps=STEPS, seed=request.seed,
                output_type="latent")
    for mode in ("dense", "flex"):
        config = EngineConfig(base="tiny", dtype="float32", fuse_lora=False, device="cpu", binding_attention=mode)
        engine = EngineService.from_pipeline(AstraPipeline.tiny(seed=0), config)
        assert engine.pipe.binding_attention == mode
        images[mode] = _pixels(engine.generate(request))
        latents[mode] = engine.pipe(**args).images[0]
    unbound = service.pipe(**{**args, "binding_strength": 0.0}).images[0]
    assert np.abs(images["flex"] - images["dense"]).max() <= 1
    assert (latents["flex"] - latents["dense"]).abs().max() <= 1e-5
    assert (latents["dense"] - unbound).abs().max() > 1e-3  # binding changes the result: not vacuous


def test_fp8_engine_quantises_the_transformer_and_generates(service):
    pytest.importorskip("torchao")
    from engine.quantize import is_quantized

    config = EngineConfig(base="tiny", dtype="float32", fuse_lora=False, device="cpu", quantize="fp8")
    engine = EngineService.from_pipeline(AstraPipeline.tiny(seed=0), config)
    assert is_quantized(engine.pipe.transformer) and "fp8 transformer weights" in engine.info().message
    result = engine.generate(_request())
    assert result.image.size == (64, 64)
    assert np.abs(_pixels(result) - _pixels(service.generate(_request()))).mean() < 40  # close, not equal


@pytest.mark.slow
def test_compiled_flex_binding_compiles_once_not_per_request():
    """compile_repeated_blocks with the flex binding: the second and third requests (other seeds,
    strengths, references) reuse the first one's graphs, with no graph break."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    config = EngineConfig(base="tiny", dtype="float32", fuse_lora=False, device="cpu", compile=True,
                          compile_backend="aot_eager", binding_attention="flex")
    engine = EngineService.from_pipeline(AstraPipeline.tiny(seed=0), config)
    graphs = []
    for seed, strength in ((1, 1.0), (2, 0.5), (3, 2.0)):
        engine.generate(_posed_request(seed=seed, binding_strength=strength, num_inference_steps=1))
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs[0] > 0 and graphs == [graphs[0]] * 3
    assert not counters["graph_break"]
    torch._dynamo.reset()
