"""The resident engine service: load once, keep the pipeline in memory, one job at a time.

The studio (``ui/``) talks to the engine only through this class and the torch-free data in
``engine.request``::

    service = EngineService.load(EngineConfig(adapter="path/or/repo"))   # or .tiny() / .unavailable(why)
    service.info()                                                        # -> EngineInfo
    service.generate(request, progress=lambda step, total: ..., cancel=threading.Event())

Generation is serialised by a lock (a GPU runs one FLUX job well, two badly); a job waiting for
the lock can be cancelled while it waits. Progress and cancellation go through the pipeline's
``callback_on_step_end``: cancel is checked after every denoising step and the pipeline stops
before the next one. Out-of-memory and unexpected failures become an :class:`EngineError`
sentence, the memory is released and the service stays usable: per job, the only pipeline state
touched is the interrupt flag and the offload hooks, both restored when the job ends.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from engine.attention import install_binding_processors
from engine.errors import EngineError, GenerationCancelled
from engine.hub import hub_error, is_hub_id
from engine.pipeline import TINY_MESSAGE, AstraPipeline
from engine.quantize import QUANTIZE_MODES, fp8_config, quantize_transformer
from engine.request import EngineInfo, GenerationRequest, GenerationResult
from engine.settings import CLIP_VISION, FLUX_DEV

log = logging.getLogger(__name__)

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
OFFLOAD_MODES = ("none", "model", "sequential")
BINDING_ATTENTION = ("auto", "flex", "dense")
TINY_BASE = "tiny (random weights)"
_LOCK_POLL_S = 0.05
Progress = Callable[[int, int], None]


@dataclass
class EngineConfig:
    """How to load the real engine.

    Args:
        base: FLUX.1-dev hub id or a local diffusers folder.
        adapter: ASTRA adapter folder or hub repo, or None for FLUX with EURoPE conditioning only.
        dtype: ``"bfloat16"`` (GPUs), ``"float16"`` or ``"float32"`` (CPU).
        offload: ``"none"`` keeps everything on the GPU (~33 GB for FLUX.1-dev in bf16);
            ``"model"`` moves whole models to the GPU only while they run (24 GB cards);
            ``"sequential"`` streams layer by layer (least memory, slowest).
        fuse_lora: merge the adapter's LoRA into the base weights at load (faster steps).
        compile: ``torch.compile`` the repeated DiT blocks (the first generation at each size
            compiles, later ones run faster).
        compile_backend: the ``torch.compile`` backend.
        device: ``"cuda"``, ``"cuda:1"``, ``"cpu"``...; None picks the first CUDA GPU.
        clip: CLIP vision model (hub id or folder) DSM reads reference features from.
        local_files_only: never touch the network (hub cache and folders only).
        uno_lora: UNO's LoRA (``bytedance-research/UNO``, its folder or ``dit_lora.safetensors``)
            for ``public`` mode; ignored with ``adapter``.
        controlnet: a pose FLUX ControlNet (hub id or folder) for ``public``/``base`` mode;
            ignored with ``adapter``.
        control_mode: a union v1 ControlNet's mode (pose 4); None: the model card's.
        quantize: ``"none"`` or ``"fp8"``: fp8 weight-only transformer through torchao
            (``engine.quantize``; halves its weights, for 24 GB cards; needs ``fuse_lora``).
        binding_attention: how subject binding runs: ``"flex"`` (FlexAttention ids, no S x S
            mask), ``"dense"`` (the additive-mask reference) or ``"auto"`` (flex on CUDA).
    """

    base: str = FLUX_DEV
    adapter: str | None = None
    dtype: str = "bfloat16"
    offload: str = "none"
    fuse_lora: bool = True
    compile: bool = False
    compile_backend: str = "inductor"
    device: str | None = None
    clip: str = CLIP_VISION
    local_files_only: bool = False
    uno_lora: str | None = None
    controlnet: str | None = None
    control_mode: int | None = None
    quantize: str = "none"
    binding_attention: str = "auto"

    def check(self, sources: bool = True) -> None:
        """Raise :class:`EngineError` on a setting that cannot work, before any weight loads
        (``sources``: also that local base/adapter/clip folders exist)."""
        if self.dtype not in DTYPES:
            raise EngineError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}.")
        if self.offload not in OFFLOAD_MODES:
            raise EngineError(f"offload must be one of {', '.join(OFFLOAD_MODES)}, not {self.offload!r}.")
        if self.quantize not in QUANTIZE_MODES:
            raise EngineError(f"quantize must be one of {', '.join(QUANTIZE_MODES)}, not {self.quantize!r}.")
        if self.binding_attention not in BINDING_ATTENTION:
            raise EngineError(f"binding_attention must be one of {', '.join(BINDING_ATTENTION)}, "
                              f"not {self.binding_attention!r}.")
        if self.quantize == "fp8":
            fp8_config()  # torchao missing: an error naming it now, not after the weights loaded
            if not self.fuse_lora and (self.adapter or self.uno_lora):
                raise EngineError("--quantize fp8 needs the LoRA fused into the base weights; set fuse_lora=True "
                                  "or start without --quantize.")
        if self.device is not None:
            try:
                device = torch.device(self.device)
            except RuntimeError as error:
                raise EngineError(f"{self.device!r} is not a device; use 'cuda', 'cuda:1' or 'cpu'.") from error
            if device.type == "cpu" and self.offload != "none":
                raise EngineError("CPU offload needs a GPU to offload from; use offload='none' on the CPU.")
        for name in ("base", "adapter", "clip", "uno_lora", "controlnet") if sources else ():
            _check_source(name, getattr(self, name))


def _check_source(name: str, value: str | None) -> None:
    """A missing local folder fails here with its name, not deep inside a hub download."""
    if value is None:
        return
    path = Path(value).expanduser()
    if path.exists() or is_hub_id(value):
        return
    raise EngineError(f"{name} {value!r} is neither an existing folder nor a hub id (owner/name); check the path.")


class EngineService:
    """The loaded engine (or the reason there is none). Build it with :meth:`load`,
    :meth:`tiny` or :meth:`unavailable`; see the module docstring."""

    def __init__(self, pipe: AstraPipeline | None, info: EngineInfo, config: EngineConfig | None = None) -> None:
        self._pipe = pipe
        self._info = info
        self._config = config
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------- construction

    @classmethod
    def load(cls, config: EngineConfig) -> EngineService:
        """Load FLUX, the CLIP vision encoder and the adapter once, and place them on the device.

        Raises :class:`EngineError` with what to do when anything is missing or does not fit.
        """
        config.check()
        device = _resolve_device(config.device)
        started = time.perf_counter()
        try:
            pipe = AstraPipeline.from_pretrained(base=config.base, adapter=config.adapter, image_encoder=config.clip,
                                                 dtype=DTYPES[config.dtype], fuse_lora=config.fuse_lora,
                                                 local_files_only=config.local_files_only,
                                                 uno_lora=None if config.adapter else config.uno_lora,
                                                 controlnet=None if config.adapter else config.controlnet,
                                                 control_mode=config.control_mode)
        except EngineError:
            raise
        except Exception as error:  # hub, file-format and memory errors have no common base class
            log.exception("Loading the engine failed")
            _release_memory()
            what = f"engine (adapter {config.adapter!r})" if config.adapter else "engine"
            raise hub_error(error, what, config.base) from error
        service = cls.from_pipeline(pipe, replace(config, device=str(device)))
        log.info("Engine loaded in %.1f s: %s", time.perf_counter() - started, service.info())
        return service

    @classmethod
    def from_pipeline(cls, pipe: AstraPipeline, config: EngineConfig) -> EngineService:
        """Serve an already built pipeline: place it (device or offload) and compile it as ``config`` says;
        ``config.base``/``adapter`` only label it."""
        config.check(sources=False)
        device = torch.device(config.device or "cpu")
        if config.quantize != "none":  # on the host, before placement: only the fp8 weights reach the GPU
            quantize_transformer(pipe.transformer, config.quantize)
        try:
            if config.offload == "model":
                pipe.enable_model_cpu_offload(device=device)
            elif config.offload == "sequential":
                pipe.enable_sequential_cpu_offload(device=device)
            else:
                pipe.to(device)
            pipe.binding_attention = config.binding_attention
            # Before compiling: the blocks are traced with the processor that takes the flex binding.
            install_binding_processors(pipe.transformer)
            if config.compile:
                pipe.transformer.compile_repeated_blocks(backend=config.compile_backend)
        except Exception as error:
            _release_memory()
            hint = " Try offload='model' (24 GB cards) or a smaller dtype." if _is_out_of_memory(error) else ""
            raise EngineError(f"Could not place the engine on {device} ({type(error).__name__}: {error}).{hint}") \
                from error
        return cls(pipe, _describe(pipe, config, device), config)

    @classmethod
    def tiny(cls, seed: int = 0, mode: str = "astra") -> EngineService:
        """The tiny engine: every component from small configs with random weights, on the CPU.
        Runs the real code path in seconds; its images are noise. ``mode``: see ``engine.modes``."""
        config = EngineConfig(base=TINY_BASE, dtype="float32", fuse_lora=False, device="cpu")
        pipe = AstraPipeline.tiny(seed=seed, mode=mode)
        return cls(pipe.to("cpu"), EngineInfo(kind="tiny", device="cpu", dtype="float32", base=TINY_BASE,
                                              adapter=None, message=TINY_MESSAGE, **_mode_fields(pipe)), config)

    @classmethod
    def unavailable(cls, reason: str) -> EngineService:
        """No engine; :meth:`generate` raises :class:`EngineError` with ``reason``."""
        return cls(None, EngineInfo(kind="none", device="none", dtype="none", base="", adapter=None, message=reason))

    # ----------------------------------------------------------------------------- state

    def info(self) -> EngineInfo:
        """What this service runs on (a copy: callers may not change it)."""
        return replace(self._info)

    @property
    def pipe(self) -> AstraPipeline | None:
        """The resident pipeline (None when unavailable). Use :meth:`generate` to run it."""
        return self._pipe

    @property
    def config(self) -> EngineConfig | None:
        """The options it was built with (None when unavailable)."""
        return self._config

    @property
    def busy(self) -> bool:
        """Whether a job is running now."""
        return self._lock.locked()

    @property
    def concurrency(self) -> int:
        """How many jobs can run at once (one engine: 1; ``engine.pool.EnginePool``: one per GPU)."""
        return 1

    def try_acquire(self) -> bool:
        """Claim this engine for one job without waiting (``engine.pool``); pair with :meth:`release`."""
        return self._pipe is not None and self._lock.acquire(blocking=False)

    def release(self) -> None:
        self._lock.release()

    def run_claimed(self, request: GenerationRequest, progress: Progress | None = None,
                    cancel: threading.Event | None = None) -> GenerationResult:
        """:meth:`generate` on an engine already claimed with :meth:`try_acquire` (the caller releases it)."""
        self._check_request(request)
        return self._run(request, progress, cancel)

    # ----------------------------------------------------------------------------- generation

    def generate(self, request: GenerationRequest, progress: Progress | None = None,
                 cancel: threading.Event | None = None) -> GenerationResult:
        """Run one request (waiting for the running one, if any, to finish first).

        Args:
            request: what to generate (validated by the pipeline before any model runs).
            progress: called as ``progress(step, total)`` with step 0 when the job starts and
                after each denoising step.
            cancel: set it to stop; checked while waiting and after every step.

        Raises:
            GenerationCancelled: ``cancel`` was set; nothing was produced.
            EngineError: no engine, a bad request, out of memory or another failure (the
                service stays usable).
        """
        self._check_request(request)
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("Stopped before the first step.")
        while not self._lock.acquire(timeout=_LOCK_POLL_S):
            if cancel is not None and cancel.is_set():
                raise GenerationCancelled("Stopped while waiting for the previous generation to finish.")
        try:
            return self._run(request, progress, cancel)
        finally:
            self._lock.release()

    def _check_request(self, request: GenerationRequest) -> None:
        if self._pipe is None:
            raise EngineError(f"Generation is off: {self._info.message}")
        if not isinstance(request, GenerationRequest):
            raise EngineError(f"generate() takes a GenerationRequest, not {type(request).__name__}.")

    def _run(self, request: GenerationRequest, progress: Progress | None,
             cancel: threading.Event | None) -> GenerationResult:
        pipe, total = self._pipe, request.num_inference_steps

        def on_step_end(pipeline, step: int, timestep, callback_kwargs: dict) -> dict:
            if progress is not None:
                progress(step + 1, total)
            if cancel is not None and cancel.is_set():
                pipeline.interrupt = True  # the pipeline stops before the next step
            return {}

        started = time.perf_counter()
        try:
            if progress is not None:
                progress(0, total)
            output = pipe(prompt=request.prompt, subjects=list(request.subjects),
                          subject_names=list(request.subject_names) or None, pose=request.pose,
                          height=request.height, width=request.width,
                          num_inference_steps=request.num_inference_steps, guidance_scale=request.guidance_scale,
                          seed=request.seed, binding_strength=request.binding_strength,
                          callback_on_step_end=on_step_end, **request.control_kwargs())
        except EngineError:  # bad input (check_inputs) or GenerationCancelled
            raise
        except Exception as error:
            _release_memory()
            if _is_out_of_memory(error):
                raise EngineError(
                    f"Out of {'GPU ' if self._info.device.startswith('cuda') else ''}memory at "
                    f"{request.width}x{request.height} with {len(request.subjects)} subject(s); try a smaller size "
                    "or fewer subjects, or restart the engine with offload='model'. The engine is still loaded."
                ) from error
            log.exception("Generation failed")
            raise EngineError(f"Generation failed ({type(error).__name__}: {error}); the engine is still loaded, "
                              "try again, and report the problem if it persists.") from error
        finally:
            pipe.interrupt = False
            pipe.maybe_free_model_hooks()  # offload: models back to the CPU, hooks ready for the next job
        return GenerationResult(image=output.images[0], seed=request.seed,
                                elapsed_s=time.perf_counter() - started, info=self.info())


def _resolve_device(device: str | None) -> torch.device:
    if device is not None:
        resolved = torch.device(device)
        if resolved.type == "cuda" and not torch.cuda.is_available():
            raise EngineError(f"Device {device} was asked for, but PyTorch sees no CUDA GPU; check the driver "
                              "and the CUDA build of torch, or start with --engine tiny.")
        return resolved
    if torch.cuda.is_available():
        return torch.device("cuda")
    raise EngineError("No CUDA GPU is visible to PyTorch: the real engine needs one (24 GB or more with "
                      "offload='model'). Start the studio with --engine tiny to try it without a GPU.")


def _describe(pipe: AstraPipeline, config: EngineConfig, device: torch.device) -> EngineInfo:
    notes = []
    if device.type == "cuda":
        try:
            if device.index is None:
                device = torch.device("cuda", torch.cuda.current_device())
            props = torch.cuda.get_device_properties(device)
            notes.append(f"{props.name}, {props.total_memory / 2**30:.0f} GiB")
        except (RuntimeError, AssertionError):  # ZeroGPU: no CUDA context in the main process
            pass
    if config.offload != "none":
        notes.append(f"{config.offload} CPU offload")
    if (config.adapter or pipe.checkpoints.get("uno_lora")) and config.fuse_lora:
        notes.append("LoRA fused")
    if config.quantize != "none":
        notes.append(f"{config.quantize} transformer weights (torchao)")
    if config.compile:
        notes.append(f"compiled blocks ({config.compile_backend}; the first image per size compiles)")
    if pipe.is_tiny:
        notes.append(TINY_MESSAGE)
    return EngineInfo(kind="tiny" if pipe.is_tiny else "real", device=str(device),
                      dtype=str(pipe.transformer.dtype).removeprefix("torch."), base=config.base,
                      adapter=config.adapter, message="; ".join(notes), **_mode_fields(pipe))


def _mode_fields(pipe: AstraPipeline) -> dict:
    """EngineInfo's mode, exact checkpoints and ControlNet defaults (``engine.modes``)."""
    control = pipe.control
    return dict(mode=pipe.mode, uno_lora=pipe.checkpoints.get("uno_lora"),
                controlnet=pipe.checkpoints.get("controlnet") or ("tiny" if pipe.controlnet is not None else None),
                control_defaults=None if control is None else (control.conditioning_scale, control.guidance_start,
                                                                control.guidance_end))


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(error).lower()  # other backends (MPS, the CPU allocator) raise plain RuntimeErrors
    return isinstance(error, RuntimeError) and ("out of memory" in text or "not enough memory" in text)


def _release_memory() -> None:
    """Drop the failed job's activations so the next job has the memory back."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
