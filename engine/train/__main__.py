"""``python -m engine.train``: train an ASTRA adapter (see ``engine.train``)."""

from __future__ import annotations

import argparse
import json
import sys

from engine.errors import EngineError
from engine.train.config import TrainConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m engine.train", description=__doc__)
    parser.add_argument("--data", help="dataset folder holding train.jsonl")
    parser.add_argument("--base", help="FLUX.1-dev hub id or local folder")
    parser.add_argument("--out", help="output folder (adapter, checkpoints, logs, validation)")
    parser.add_argument("--config", help="YAML file of TrainConfig settings (flags override it)")
    parser.add_argument("--tiny", action="store_true", help="train the tiny CPU engine on self-written samples")
    parser.add_argument("--steps", type=int, help="optimiser steps")
    parser.add_argument("--resume", help='"latest" or a checkpoint folder')
    parser.add_argument("--init-lora", dest="init_lora", help="start from UNO's LoRA (file, folder or hub id)")
    parser.add_argument("--cache", action="store_true", default=None,
                        help="precompute text embeddings, VAE latents and CLIP features once")
    parser.add_argument("--skip-invalid", dest="skip_invalid", action="store_true", default=None,
                        help="train on the valid samples instead of refusing a dataset with bad ones")
    parser.add_argument("--learning-rate", dest="learning_rate", type=float)
    parser.add_argument("--lora-rank", dest="lora_rank", type=int)
    parser.add_argument("--mosaic-weight", dest="mosaic_weight", type=float)
    parser.add_argument("--seed", type=int)
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> TrainConfig:
    overrides = {k: v for k, v in vars(args).items()
                 if k not in ("config", "resume", "tiny") and v is not None}
    if args.config:
        return TrainConfig.from_yaml(args.config, **({"tiny": True} if args.tiny else {}), **overrides)
    if args.tiny:
        return TrainConfig.tiny_defaults(**overrides)
    return TrainConfig(**overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = build_config(args)
        from engine.train.trainer import Trainer

        trainer = Trainer(config, resume=args.resume)
        result = trainer.train()
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if trainer.accelerator.is_main_process:
        print(json.dumps({"out": config.out, "steps": config.steps, "eval_loss_start": result["eval_loss_start"],
                          "eval_loss_end": result["eval_loss_end"],
                          "losses": [round(x, 5) for x in result["losses"]]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
