"""``python -m engine.benchmark``: build-coco, build-dreambench, run, report (see ``engine.benchmark``)."""

from __future__ import annotations

import argparse
import json
import sys

from engine.errors import EngineError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m engine.benchmark", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    coco = sub.add_parser("build-coco", help="the COCO complex-pose benchmark")
    coco.add_argument("--keypoints", required=True, help="person_keypoints_val2017.json")
    coco.add_argument("--captions", required=True, help="captions_val2017.json")
    coco.add_argument("--images", required=True, help="the split's image folder (val2017/)")
    coco.add_argument("--out", required=True)
    coco.add_argument("--n", type=int, default=1000)
    coco.add_argument("--max-people", type=int, default=3)
    coco.add_argument("--min-keypoints", type=int, default=8)
    coco.add_argument("--seed", type=int, default=0)
    dream = sub.add_parser("build-dreambench", help="DreamBench single- and multi-subject benchmarks")
    dream.add_argument("--root", required=True, help="a local copy of google/dreambooth")
    dream.add_argument("--out", default=None, help="default: ROOT/benchmark")
    dream.add_argument("--combinations", type=int, default=30)
    dream.add_argument("--prompts", type=int, default=25)
    dream.add_argument("--seed", type=int, default=0)
    dream.add_argument("--multi-json", default=None, help="UNO's dreambench_multiip.json: use its exact groups")
    run = sub.add_parser("run", help="generate and score a benchmark")
    run.add_argument("--bench", required=True)
    run.add_argument("--out", required=True, help="results.json")
    run.add_argument("--engine", choices=("tiny", "real"), default="real")
    run.add_argument("--mode", choices=("astra", "public", "base"), default=None,
                     help="tiny: the mode to build; real: checked against the mode the weights give")
    run.add_argument("--base", default=None)
    run.add_argument("--adapter", default=None)
    run.add_argument("--uno-lora", dest="uno_lora", default=None)
    run.add_argument("--controlnet", default=None)
    run.add_argument("--control-mode", dest="control_mode", type=int, default=None)
    run.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default="bfloat16")
    run.add_argument("--offload", choices=("none", "model", "sequential"), default="none")
    run.add_argument("--quantize", choices=("none", "fp8"), default="none")
    run.add_argument("--resolution", type=int, default=512)
    run.add_argument("--steps", type=int, default=28)
    run.add_argument("--guidance", type=float, default=3.5)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--limit", type=int, default=None, help="only the first N samples")
    run.add_argument("--detector", choices=("blazepose", "openpose", "dwpose", "none"), default="blazepose")
    run.add_argument("--detector-weights", default=None)
    run.add_argument("--clip", default=None, help="hub id or folder (default openai/clip-vit-base-patch32); none: skip")
    run.add_argument("--dino", default=None, help="hub id or folder (default facebook/dino-vits16); none: skip")
    run.add_argument("--online", action="store_true", help="allow hub downloads")
    run.add_argument("--worst", type=int, default=8, help="rows in the worst-cases contact sheet")
    report = sub.add_parser("report", help="paper-style table of results files")
    report.add_argument("results", nargs="+")
    report.add_argument("--paper", action="store_true", help="add the paper's COCO rows")
    return parser.parse_args(argv)


def build_engine(args: argparse.Namespace, device: str | None):
    from engine.service import EngineConfig, EngineService

    if args.engine == "tiny":
        return EngineService.tiny(seed=0, mode=args.mode or "astra")
    kwargs = {k: getattr(args, k) for k in ("adapter", "uno_lora", "controlnet", "control_mode", "dtype",
                                            "offload", "quantize")}
    if args.base:
        kwargs["base"] = args.base
    engine = EngineService.load(EngineConfig(device=device, local_files_only=not args.online, **kwargs))
    if args.mode and engine.info().mode != args.mode:
        raise EngineError(f"--mode {args.mode} asked for, but these weights load as {engine.info().mode} mode "
                          "(astra needs --adapter; public --uno-lora and --controlnet).")
    return engine


def command_run(args: argparse.Namespace) -> int:
    import os

    from engine.benchmark.metrics import CLIP_DEFAULT, DINO_DEFAULT, ClipScorer, DinoScorer
    from engine.benchmark.run import run_benchmark, shard
    from pose_db.library.detector import PoseDetector

    rank, world = shard()
    local = int(os.environ.get("LOCAL_RANK", rank))
    device = None
    if args.engine == "real":
        import torch

        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    offline = not args.online
    score_device = device or "cpu"
    clip = None if args.clip == "none" else ClipScorer.load(args.clip or CLIP_DEFAULT, device=score_device,
                                                            local_files_only=offline)
    dino = None if args.dino == "none" else DinoScorer.load(args.dino or DINO_DEFAULT, device=score_device,
                                                            local_files_only=offline)
    detector = None
    if args.detector != "none":
        detector = PoseDetector.load(args.detector_weights, kind=args.detector, device=score_device).require()
    engine = build_engine(args, device)
    results = run_benchmark(args.bench, args.out, engine, detector=detector, clip=clip, dino=dino,
                            resolution=args.resolution, steps=args.steps, guidance=args.guidance, seed=args.seed,
                            limit=args.limit, rank=rank, world=world, worst=args.worst)
    if results is not None:
        from engine.benchmark.report import table

        print(table([args.out]))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "build-coco":
            from engine.benchmark.build import build_coco

            print(json.dumps(build_coco(args.keypoints, args.captions, args.images, args.out, n=args.n,
                                        max_people=args.max_people, min_keypoints=args.min_keypoints,
                                        seed=args.seed)))
        elif args.command == "build-dreambench":
            from engine.benchmark.build import build_dreambench

            print(json.dumps(build_dreambench(args.root, args.out, combinations=args.combinations,
                                              prompts=args.prompts, seed=args.seed,
                                              multi_json=args.multi_json)))
        elif args.command == "run":
            return command_run(args)
        else:
            from engine.benchmark.report import table

            print(table(args.results, paper=args.paper), end="")
    except (EngineError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
