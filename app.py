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
import shlex
import sys
from dataclasses import dataclass

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
        adapter: ASTRA adapter (LoRA + DSM) hub id or local folder; None runs plain FLUX.
        dtype: "bfloat16" (recommended), "float16" or "float32".
        offload: "none" (resident, ~48 GB), "model" (CPU offload per model, ~24 GB) or
            "sequential" (per layer, slow, fits ~12 GB).
        openpose: folder or hub id holding controlnet_aux's body_pose_model.pth.
        index: pose index folder (default: ASTRA_POSE_INDEX or ~/.cache/astra-studio).
        normalizer: RAG-Pose prompt normaliser: "rules" or an instruct LLM's hub id or folder
            (e.g. Qwen/Qwen2.5-1.5B-Instruct); default ASTRA_NORMALIZER or "rules".
    """

    engine: str = "auto"
    host: str | None = None
    port: int | None = None
    share: bool = False
    base: str = "black-forest-labs/FLUX.1-dev"
    adapter: str | None = None
    dtype: str = "bfloat16"
    offload: str = "none"
    openpose: str = "lllyasviel/Annotators"
    index: str | None = None
    normalizer: str = "rules"


def parse_args(argv: list[str] | None = None) -> AppConfig:
    """Options from ``argv`` (default: ``$ASTRA_APP_ARGS`` then the command line; a Space has
    no command line, so its options go in that variable)."""
    if argv is None:
        argv = shlex.split(os.environ.get("ASTRA_APP_ARGS", "")) + sys.argv[1:]
    defaults = AppConfig()
    parser = argparse.ArgumentParser(description="ASTRA Studio")
    parser.add_argument("--engine", choices=ENGINES, default=defaults.engine)
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--share", action="store_true")
    parser.add_argument("--base", default=defaults.base)
    parser.add_argument("--adapter", default=defaults.adapter)
    parser.add_argument("--dtype", choices=("bfloat16", "float16", "float32"),
                        default=defaults.dtype)
    parser.add_argument("--offload", choices=("none", "model", "sequential"),
                        default=defaults.offload)
    parser.add_argument("--openpose", default=defaults.openpose)
    parser.add_argument("--index", default=defaults.index)
    parser.add_argument("--normalizer", default=os.environ.get("ASTRA_NORMALIZER", defaults.normalizer))
    return AppConfig(**vars(parser.parse_args(argv)))


def build_engine(config: AppConfig):
    """The engine service the options ask for; "auto" falls back to none with the reason."""
    from engine.errors import EngineError
    from engine.service import EngineConfig, EngineService

    if config.engine == "none":
        return EngineService.unavailable("Started with --engine none.")
    if config.engine == "tiny":
        return EngineService.tiny()
    try:
        return EngineService.load(EngineConfig(base=config.base, adapter=config.adapter,
                                               dtype=config.dtype, offload=config.offload))
    except EngineError as err:
        if config.engine == "real":
            raise SystemExit(f"The real engine could not start: {err}") from err
        log.warning("No real engine: %s", err)
        return EngineService.unavailable(str(err))


def build_detector(config: AppConfig, engine):
    from engine.pose_detector import PoseDetector

    device = engine.info().device if engine.info().kind == "real" else "cpu"
    return PoseDetector.load(config.openpose, device=device)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = parse_args(argv)
    engine = build_engine(config)
    log.info("Engine: %s", engine.info())

    from pose_db.normalize import make_normalizer
    from pose_db.retrieve import PoseRetriever
    from ui import StudioConfig, build_studio, launch_options

    # Builds the pose index on first start (logs its progress), then opens it.
    retriever = PoseRetriever.default(config.index, normalizer=make_normalizer(config.normalizer))
    studio_config = StudioConfig(zero_gpu=ZERO_GPU)
    demo = build_studio(engine=engine, retriever=retriever, config=studio_config,
                        detector=build_detector(config, engine))
    demo.launch(server_name=config.host, server_port=config.port, share=config.share,
                **launch_options(studio_config.limits.max_file_size))


if __name__ == "__main__":
    main()
