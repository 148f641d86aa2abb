"""ASTRA Studio: ``python app.py`` starts the studio.

    python app.py                    # real FLUX engine if a GPU and weights are there, else none
    python app.py --engine tiny      # untrained tiny engine (images are noise): development, tests
    python app.py --engine none --port 7860 --host 0.0.0.0

Thin on purpose: parse the options, build the services (engine, RAG-Pose retriever, pose
detector), hand them to ``ui.build_studio`` and launch.
"""

from __future__ import annotations

import os

# On a ZeroGPU Space, `spaces` must patch CUDA before anything imports torch.
ZERO_GPU = bool(os.environ.get("SPACES_ZERO_GPU"))
if ZERO_GPU:
    import spaces  # noqa: F401

import argparse
import logging
import re
import shlex
import sys
from dataclasses import dataclass, replace

from pose_db import env

log = logging.getLogger("astra.app")

ENGINES = ("auto", "real", "tiny", "none")


@dataclass
class AppConfig:
    """Command-line options.

    Attributes:
        engine: "auto" (real when a GPU and weights are available, otherwise none), "real"
            (fail if it cannot load), "tiny" (untrained, images are noise) or "none".
        host, port: where to listen; None lets Gradio read GRADIO_SERVER_NAME/PORT (Spaces
            set them) and otherwise use 127.0.0.1:7860.
        share: open a temporary public gradio.live link.
        base: FLUX.1-dev hub id or local folder (gated: accept its licence, set HF_TOKEN).
        adapter: ASTRA adapter (LoRA + DSM) hub id or local folder: ``astra`` mode.
        uno_lora: UNO's LoRA (hub id, folder or dit_lora.safetensors) for ``public`` mode, used
            when no adapter is given; "none" turns it off.
        controlnet: pose FLUX ControlNet (hub id or folder) for ``public``/``base`` mode; "none"
            turns it off. FLUX.1-dev, its ControlNets and UNO's weights are non-commercial.
        control_mode: a union v1 ControlNet's mode (pose 4); default: the model card's.
        dtype: "bfloat16" (recommended), "float16" or "float32".
        offload: "none" (resident, ~48 GB), "model" (CPU offload per model, ~24 GB) or
            "sequential" (per layer, slow, fits ~12 GB).
        quantize: "none" or "fp8" (fp8 weight-only transformer through torchao: ~12 GB less).
        gpus: GPU indices ("0,1,2,3"): one resident engine per GPU, and as many generations
            at once; None: one engine on the first GPU.
        detector: pose-from-photo detector: "blazepose" (built in, the default: CPU, no
            download), "openpose" or "dwpose" (controlnet_aux, with their weights). None: blazepose,
            or openpose when ``--openpose`` is given (what that option meant before).
        openpose: folder or hub id holding controlnet_aux's body_pose_model.pth.
        index: pose index folder (default: ASTRA_POSE_INDEX or ~/.cache/astra-studio).
        specs: action specs folder the first start builds the index from (default: the
            bundled library, ``pose_db/library/actions``).
        normalizer: RAG-Pose prompt normaliser: "rules" or an instruct LLM's hub id or folder
            (e.g. Qwen/Qwen2.5-1.5B-Instruct); default ASTRA_NORMALIZER or "rules".
    """

    engine: str = "auto"
    host: str | None = None
    port: int | None = None
    share: bool = False
    base: str = "black-forest-labs/FLUX.1-dev"
    adapter: str | None = None
    uno_lora: str | None = "bytedance-research/UNO"
    controlnet: str | None = "Shakker-Labs/FLUX.1-dev-ControlNet-Union-Pro-2.0"
    control_mode: int | None = None
    dtype: str = "bfloat16"
    offload: str = "none"
    quantize: str = "none"
    gpus: str | None = None
    detector: str | None = None
    openpose: str = "lllyasviel/Annotators"
    index: str | None = None
    specs: str | None = None
    normalizer: str = "rules"


def parse_args(argv: list[str] | None = None) -> AppConfig:
    """Options from ``argv`` (default: ``$ASTRA_APP_ARGS`` then the command line; a Space has
    no command line, so its options go in that variable)."""
    if argv is None:
        argv = shlex.split(env.get("ASTRA_APP_ARGS") or "") + sys.argv[1:]
    defaults = AppConfig()
    parser = argparse.ArgumentParser(description="ASTRA Studio")
    parser.add_argument("--engine", choices=ENGINES, default=defaults.engine)
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--share", action="store_true")
    parser.add_argument("--base", default=defaults.base)
    parser.add_argument("--adapter", default=defaults.adapter)
    parser.add_argument("--uno-lora", dest="uno_lora", type=_optional, default=defaults.uno_lora)
    parser.add_argument("--controlnet", type=_optional, default=defaults.controlnet)
    parser.add_argument("--control-mode", dest="control_mode", type=int, default=defaults.control_mode)
    parser.add_argument("--dtype", choices=("bfloat16", "float16", "float32"),
                        default=defaults.dtype)
    parser.add_argument("--offload", choices=("none", "model", "sequential"),
                        default=defaults.offload)
    parser.add_argument("--quantize", choices=("none", "fp8"), default=defaults.quantize)
    parser.add_argument("--gpus", type=_gpu_list, default=defaults.gpus,
                        help="one resident engine per listed GPU, e.g. 0,1,2,3")
    parser.add_argument("--detector", choices=("blazepose", "openpose", "dwpose"), default=defaults.detector,
                        help="pose-from-photo detector (default blazepose; openpose when --openpose is given)")
    parser.add_argument("--openpose", default=defaults.openpose)
    parser.add_argument("--index", default=defaults.index)
    parser.add_argument("--specs", default=defaults.specs)
    parser.add_argument("--normalizer", default=(env.get("ASTRA_NORMALIZER") or defaults.normalizer))
    return AppConfig(**vars(parser.parse_args(argv)))


def _optional(value: str) -> str | None:
    return None if value.strip().lower() in ("", "none", "off") else value


def engine_config(config: AppConfig):
    """The EngineConfig to try first, and the mode it aims at with why (``engine.modes``):
    ``astra`` with an adapter, else ``public`` with UNO's LoRA and a ControlNet, else ``base``."""
    from engine.service import EngineConfig

    common = dict(base=config.base, dtype=config.dtype, offload=config.offload, quantize=config.quantize)
    if config.adapter:
        return (EngineConfig(adapter=config.adapter, **common),
                f"astra mode: ASTRA adapter {config.adapter} (UNO LoRA and ControlNet options not used)")
    target = EngineConfig(uno_lora=config.uno_lora, controlnet=config.controlnet,
                          control_mode=config.control_mode, **common)
    if config.uno_lora and config.controlnet:
        return target, (f"public mode: no --adapter, so UNO LoRA {config.uno_lora} for the subjects and "
                        f"{config.controlnet} for the pose (non-commercial weights)")
    missing = "--uno-lora" if not config.uno_lora else "--controlnet"
    return (replace(target, uno_lora=None),
            f"base mode: {missing} is off, so FLUX.1-dev alone (text{' and pose' if config.controlnet else ''})")


def _gpu_list(text: str) -> str:
    if not re.fullmatch(r"\s*\d+\s*(,\s*\d+\s*)*", text):
        raise argparse.ArgumentTypeError(f"GPU indices separated by commas (e.g. 0,1,2,3), not {text!r}")
    return text


def load_engines(engine, gpus: str | None):
    """One resident engine, or one per GPU of ``--gpus`` (``engine.pool.EnginePool``)."""
    from engine.service import EngineService

    if not gpus:
        return EngineService.load(engine)
    from engine.pool import EnginePool, parse_gpus

    return EnginePool.load(engine, parse_gpus(gpus))


def fallback_config(engine, error):
    """After ``WeightsUnavailable``: the smaller mode to try, and why (public needs both parts)."""
    if error.part == "uno_lora":
        return (replace(engine, uno_lora=None),
                f"base mode: UNO's LoRA did not load ({error}), so no subject images; the pose still "
                "goes through the ControlNet")
    return (replace(engine, uno_lora=None, controlnet=None),
            f"base mode: the pose ControlNet did not load ({error}), so FLUX.1-dev alone, text only")


def build_engine(config: AppConfig):
    """The engine service the options ask for; "auto" falls back to none with the reason."""
    from engine.errors import EngineError
    from engine.modes import WeightsUnavailable
    from engine.service import EngineService

    if config.engine == "none":
        return EngineService.unavailable("Started with --engine none.")
    if config.engine == "tiny":
        return EngineService.tiny()
    engine, why = engine_config(config)
    try:
        try:
            log.info("Engine: trying %s", why)
            service = load_engines(engine, config.gpus)
        except WeightsUnavailable as err:
            engine, why = fallback_config(engine, err)
            log.warning("Engine: %s", why)
            service = load_engines(engine, config.gpus)
        log.info("Engine mode: %s", why)
        return service
    except EngineError as err:
        if config.engine == "real":
            raise SystemExit(f"The real engine could not start: {err}") from err
        log.warning("No real engine: %s", err)
        return EngineService.unavailable(str(err))


def build_detector(config: AppConfig, engine):
    from pose_db.library.detector import PoseDetector

    kind = config.detector or ("openpose" if config.openpose != AppConfig.openpose else "blazepose")
    if kind == "blazepose":
        return PoseDetector.load(kind="blazepose")
    device = engine.info().device if engine.info().kind == "real" else "cpu"
    source = config.openpose if kind == "openpose" or config.openpose != AppConfig.openpose else None
    return PoseDetector.load(source, kind=kind, device=device)


def build_retriever(config: AppConfig):
    """RAG-Pose over the pose index, which the first start builds from the library (progress logged)."""
    from pose_db.index.build import ensure_index
    from pose_db.index.embedder import Embedder
    from pose_db.prompt import make_normalizer
    from pose_db.retrieval.retriever import PoseRetriever

    embedder = Embedder()
    index = ensure_index(config.index, embedder=embedder, specs_dir=config.specs)
    return PoseRetriever(index, embedder, make_normalizer(config.normalizer))


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = parse_args(argv)
    engine = build_engine(config)
    log.info("Engine: %s", engine.info())

    from pose_db.scene.model import PoseError
    from ui import StudioConfig, build_studio, launch_options

    try:
        retriever = build_retriever(config)
    except PoseError as err:  # a damaged or unreadable index, a bad specs folder: say what to do
        raise SystemExit(f"The pose index could not be opened: {err}") from err
    studio_config = StudioConfig(zero_gpu=ZERO_GPU, gpu_concurrency=engine.concurrency)
    demo = build_studio(engine=engine, retriever=retriever, config=studio_config,
                        detector=build_detector(config, engine))
    demo.launch(server_name=config.host, server_port=config.port, share=config.share,
                **launch_options(studio_config.limits.max_file_size))


if __name__ == "__main__":
    main()
