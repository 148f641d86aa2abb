"""What ASTRA's extra tokens cost: token counts and FLOPs per denoising step vs FLUX text-to-image.

ASTRA appends reference and pose tokens to the image stream, and every DiT block then runs on the
longer joint sequence ``N = T + L`` (text + image tokens). Per block and token, FLUX's linear layers
are 12 d^2 multiply-adds in both block kinds (double: q, k, v, out = 4 d^2 and the MLP 8 d^2 per
stream; single: ``linear1`` d -> 3d + 4d, ``linear2`` 5d -> d), and joint attention is N^2 d for
QK^T plus N^2 d for AV. Counting 2 FLOPs per multiply-add, one step is::

    blocks * (24 d^2 N + 4 d N^2)  +  embedders (x_embedder, context_embedder, proj_out)
    + an unfused LoRA of rank r: 2 r * (8 d per token in a double block, 12 d in a single block)

Norms, activations, softmax, RoPE and the per-sample modulation are elementwise or per-sample
and left out (< 1 %). Text encoders, CLIP vision, DSM and the VAE run once per image, not per step.

    python -m engine.cost --height 1024 --width 1024 --refs 2 --ref-size 320 --pose-scale 1
    python -m engine.cost --mode public        # weights each mode holds in bf16, and with offload
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.errors import EngineError

TOKEN_PX = 16  # 8x VAE, 2x2 packing


@dataclass(frozen=True)
class DiTDims:
    """Sizes of the DiT; the defaults are FLUX.1-dev's.

    Args:
        double_blocks, single_blocks: number of each block kind.
        hidden: model width d.
        text_tokens: T5 sequence length T.
        text_dim: T5 width (``context_embedder`` input).
        latent_channels: packed latent channels (``x_embedder`` input, ``proj_out`` output).
    """

    double_blocks: int = 19
    single_blocks: int = 38
    hidden: int = 3072
    text_tokens: int = 512
    text_dim: int = 4096
    latent_channels: int = 64

    @property
    def blocks(self) -> int:
        return self.double_blocks + self.single_blocks


FLUX_DEV = DiTDims()


@dataclass(frozen=True)
class Tokens:
    """Sequence lengths of one forward: text, latent, each reference, pose map."""

    text: int
    latent: int
    references: tuple[int, ...] = ()
    pose: int = 0

    @property
    def image(self) -> int:
        return self.latent + sum(self.references) + self.pose

    @property
    def total(self) -> int:
        return self.text + self.image


@dataclass(frozen=True)
class StepFlops:
    """FLOPs of one denoising step (one DiT forward, batch 1)."""

    linear: float
    attention: float
    embed: float
    lora: float

    @property
    def total(self) -> float:
        return self.linear + self.attention + self.embed + self.lora


def grid(height: int, width: int, scale: int = 1) -> tuple[int, int]:
    """Packed-token grid of an image (``scale`` > 1: OminiControl-style compact tokens)."""
    step = TOKEN_PX * scale
    if height % step or width % step:
        raise EngineError(f"{height}x{width} is not a multiple of {step} px; pick sizes in steps of {step}.")
    return height // step, width // step


def count_tokens(height: int, width: int, references: list[tuple[int, int]] | None = None,
                 pose_scale: int = 1, dims: DiTDims = FLUX_DEV) -> Tokens:
    """Token counts of an ASTRA forward.

    Args:
        height, width: output size in pixels.
        references: (height, width) in pixels of each reference after UNO-style resizing.
        pose_scale: 1 = full-resolution pose map, 2 = half-resolution compact tokens, 0 = no pose.
        dims: the DiT (for its text length).
    """
    if pose_scale < 0:
        raise EngineError(f"pose scale must be 0 (no pose), 1 or more, got {pose_scale}.")
    h, w = grid(height, width)
    refs = tuple(a * b for a, b in (grid(*size) for size in references or []))
    pose = 0
    if pose_scale:
        ph, pw = grid(height, width, pose_scale)
        pose = ph * pw
    return Tokens(text=dims.text_tokens, latent=h * w, references=refs, pose=pose)


def step_flops(tokens: Tokens, dims: DiTDims = FLUX_DEV, lora_rank: int = 0) -> StepFlops:
    """FLOPs of one DiT forward over ``tokens`` (see the module docstring for the formula).

    Args:
        tokens: the sequence.
        dims: the DiT.
        lora_rank: rank of an unfused LoRA on every block (0: none or fused into the weights).
    """
    d, n = dims.hidden, tokens.total
    linear = dims.blocks * 24 * d * d * n
    attention = dims.blocks * 4 * d * n * n
    embed = 2 * d * (dims.text_dim * tokens.text + 2 * dims.latent_channels * tokens.image)
    lora = 2 * lora_rank * d * n * (8 * dims.double_blocks + 12 * dims.single_blocks)
    return StepFlops(linear=float(linear), attention=float(attention), embed=float(embed), lora=float(lora))


def lora_parameters(rank: int, dims: DiTDims = FLUX_DEV) -> int:
    """Parameters of ASTRA's peft LoRA of ``rank``: r * (in + out) per adapted projection, i.e.
    16 r d per double block (8 projections d -> d) and 12 r d per single block (q, k, v; proj_out 5d -> d).

    UNO's own layout shares one ``down`` across the fused q, k, v (608 r d in all at FLUX size);
    converted to peft that ``down`` is replicated (760 r d), which costs nothing once fused.
    """
    return rank * dims.hidden * (16 * dims.double_blocks + 12 * dims.single_blocks)


def compare(height: int, width: int, refs: int = 0, ref_size: tuple[int, int] = (320, 320), pose_scale: int = 1,
            lora_rank: int = 0, dims: DiTDims = FLUX_DEV) -> dict:
    """ASTRA vs FLUX text-to-image at the same output size: tokens, FLOPs and their ratios."""
    if refs < 0:
        raise EngineError(f"--refs must be 0 or more, got {refs}.")
    flux_tokens = count_tokens(height, width, pose_scale=0, dims=dims)
    astra_tokens = count_tokens(height, width, [ref_size] * refs, pose_scale, dims)
    flux, astra = step_flops(flux_tokens, dims), step_flops(astra_tokens, dims, lora_rank)

    def describe(tokens: Tokens, flops: StepFlops) -> dict:
        return {"tokens": {**asdict(tokens), "references": list(tokens.references), "image": tokens.image,
                           "total": tokens.total},
                "flops": {**asdict(flops), "total": flops.total}}

    return {
        "dit": asdict(dims), "height": height, "width": width, "refs": refs, "ref_size": list(ref_size),
        "pose_scale": pose_scale, "lora_rank": lora_rank, "lora_parameters": lora_parameters(lora_rank, dims),
        "flux_t2i": describe(flux_tokens, flux), "astra": describe(astra_tokens, astra),
        "ratio": {"tokens": astra_tokens.total / flux_tokens.total, "linear": astra.linear / flux.linear,
                  "attention": astra.attention / flux.attention, "flops": astra.total / flux.total},
    }


def format_report(result: dict, steps: int = 28, t2i_seconds: float | None = None) -> str:
    """The comparison as a small table."""
    flux, astra, ratio = result["flux_t2i"], result["astra"], result["ratio"]
    pose = f"pose map at scale {result['pose_scale']}" if result["pose_scale"] else "no pose map"
    size = "x".join(map(str, result["ref_size"]))
    dit = result["dit"]
    lines = [
        f"DiT: {dit['double_blocks']} double + {dit['single_blocks']} single blocks, hidden {dit['hidden']}, "
        f"{dit['text_tokens']} text tokens; one denoising step, batch 1",
        f"{result['height']}x{result['width']}, {result['refs']} reference(s) at {size} px, {pose}"
        + (f", unfused LoRA rank {result['lora_rank']} ({result['lora_parameters'] / 1e9:.2f} B parameters)"
           if result["lora_rank"] else ""),
        "",
        f"{'tokens':<12}{'text':>7}{'latent':>8}{'refs':>7}{'pose':>7}{'image':>8}{'total':>8}",
    ]
    for name, row in (("FLUX t2i", flux), ("ASTRA", astra)):
        t = row["tokens"]
        lines.append(f"{name:<12}{t['text']:>7}{t['latent']:>8}{sum(t['references']):>7}{t['pose']:>7}"
                     f"{t['image']:>8}{t['total']:>8}")
    lines += ["", f"{'TFLOPs/step':<12}{'linear':>9}{'attention':>11}{'embed':>8}{'lora':>8}{'total':>9}"]
    for name, row in (("FLUX t2i", flux), ("ASTRA", astra)):
        f = {k: v / 1e12 for k, v in row["flops"].items()}
        lines.append(f"{name:<12}{f['linear']:>9.2f}{f['attention']:>11.2f}{f['embed']:>8.3f}{f['lora']:>8.2f}"
                     f"{f['total']:>9.2f}")
    lines += ["", f"ASTRA / FLUX t2i: {ratio['flops']:.2f}x FLOPs per step (tokens {ratio['tokens']:.2f}x, "
                  f"linear {ratio['linear']:.2f}x, attention {ratio['attention']:.2f}x)",
              f"{steps} steps: {astra['flops']['total'] * steps / 1e15:.2f} PFLOPs vs "
              f"{flux['flops']['total'] * steps / 1e15:.2f} for FLUX t2i"]
    if t2i_seconds is not None:
        lines.append(f"at {t2i_seconds:.1f} s per FLUX t2i image: about {t2i_seconds * ratio['flops']:.1f} s "
                     "(attention runs at a somewhat different efficiency: an estimate)")
    return "\n".join(lines)


def _ref_size(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) == 2:
        return parts[1], parts[0]  # "WxH" -> (height, width)
    raise argparse.ArgumentTypeError(f"--ref-size takes pixels (320) or WIDTHxHEIGHT (320x240), not {text!r}")


# ----------------------------------------------------------------------------- memory plan per mode

CONFIGS = Path(__file__).resolve().parent / "configs"
GB = 1e9
# What each mode holds (engine.modes): component -> config file (None: computed).
_COMMON = {"transformer": "flux1_dev_transformer", "T5-XXL": "flux1_dev_text_encoder_2",
           "CLIP-L text": "flux1_dev_text_encoder", "VAE": "flux1_dev_vae"}


def parameter_counts() -> dict[str, int]:
    """Parameters of every component, counted on modules built on the ``meta`` device from the
    real configs in ``engine/configs`` (no weights, no memory; torch and diffusers load lazily)."""
    import torch
    from diffusers import AutoencoderKL, FluxControlNetModel, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModel, T5Config, T5EncoderModel

    from engine.dsm import DisentangledSemanticModulation, DSMConfig

    def config(name):
        return {k: v for k, v in json.loads((CONFIGS / f"{name}.json").read_text()).items() if not k.startswith("_")}

    builders = {
        "transformer": lambda: FluxTransformer2DModel(**config("flux1_dev_transformer")),
        "T5-XXL": lambda: T5EncoderModel(T5Config(**config("flux1_dev_text_encoder_2"))),
        "CLIP-L text": lambda: CLIPTextModel(CLIPTextConfig(**config("flux1_dev_text_encoder"))),
        "VAE": lambda: AutoencoderKL(**config("flux1_dev_vae")),
        "ControlNet (Union-Pro-2.0)": lambda: FluxControlNetModel(**config("union_pro_2_controlnet")),
        "CLIP-L vision (DSM)": lambda: CLIPVisionModel(CLIPVisionConfig(**config("clip_vit_large_patch14_vision"))),
        "DSM": lambda: DisentangledSemanticModulation(DSMConfig()),
    }
    with torch.device("meta"):
        return {name: sum(p.numel() for p in build().parameters()) for name, build in builders.items()}


def memory_plan(mode: str, counts: dict[str, int], *, fused: bool = True, controlnet: bool = True,
                lora_rank: int = 512, bytes_per_param: int = 2) -> dict:
    """Weights each mode holds in bf16, resident and with model CPU offload (weights only).

    With ``offload="model"`` one stage sits on the GPU at a time: the text encoders, then the
    transformer with the ControlNet (diffusers keeps the ControlNet out of the offload chain, so
    both are resident while denoising) and an unfused LoRA, then the VAE. Activations come on
    top (they grow with the stream: astra's pose tokens double it) and are not estimated here.
    """
    from engine.modes import spec

    spec(mode)
    lora = lora_parameters(lora_rank) if mode in ("astra", "public") else 0
    parts = {name: counts[name] for name in _COMMON}
    if mode != "astra" and controlnet:
        parts["ControlNet (Union-Pro-2.0)"] = counts["ControlNet (Union-Pro-2.0)"]
    if mode == "astra":
        parts["CLIP-L vision (DSM)"] = counts["CLIP-L vision (DSM)"]
        parts["DSM"] = counts["DSM"]
    if lora:
        parts[f"LoRA rank {lora_rank} ({'fused: in the transformer' if fused else 'unfused'})"] = 0 if fused else lora
    gb = {name: n * bytes_per_param / GB for name, n in parts.items()}
    denoise = sum(v for k, v in gb.items() if k.startswith(("transformer", "ControlNet", "LoRA")))
    stages = {"text encoders": gb["T5-XXL"] + gb["CLIP-L text"], "denoising": denoise, "VAE": gb["VAE"]}
    if mode == "astra":
        stages["DSM features"] = gb["CLIP-L vision (DSM)"] + gb["DSM"]
    return {"mode": mode, "components_gb": gb, "resident_gb": sum(gb.values()),
            "offload_model_peak_gb": max(stages.values()), "stages_gb": stages}


def format_memory(plans: list[dict]) -> str:
    lines = ["Weights in bf16 (GB; 1 GB = 1e9 bytes), parameter counts from the real configs on the meta device"]
    for plan in plans:
        lines.append(f"\n{plan['mode']} mode")
        lines += [f"  {name:<44}{value:>7.2f}" for name, value in plan["components_gb"].items()]
        lines.append(f"  {'resident (offload none)':<44}{plan['resident_gb']:>7.2f}")
        lines.append(f"  {'peak with offload=model (largest stage)':<44}{plan['offload_model_peak_gb']:>7.2f}")
    lines.append("\nActivations are not included (not measured here: no GPU); they grow with the stream length.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.cost",
                                     description="Token counts and FLOPs per denoising step of ASTRA vs FLUX.1-dev "
                                                 "text-to-image at the same size.")
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--refs", type=int, default=0, help="number of reference images")
    parser.add_argument("--ref-size", type=_ref_size, default=(320, 320),
                        help="reference size after UNO-style resizing: 320 or WIDTHxHEIGHT (UNO: 512 for one, "
                             "320 for several)")
    parser.add_argument("--pose-scale", type=int, default=1, help="1 full-resolution pose map, 2 half, 0 no pose")
    parser.add_argument("--lora-rank", type=int, default=0, help="rank of an unfused LoRA (0: fused or none)")
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--t2i-seconds", type=float, help="measured FLUX t2i time per image, to scale")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--mode", choices=("astra", "public", "base", "all"),
                        help="print the weights each mode holds (resident and with offload) instead of FLOPs")
    parser.add_argument("--unfused", action="store_true", help="with --mode: the LoRA kept unfused")
    parser.add_argument("--no-controlnet", action="store_true", help="with --mode: base/public without a ControlNet")
    args = parser.parse_args(argv)
    if args.mode:
        counts = parameter_counts()
        plans = [memory_plan(mode, counts, fused=not args.unfused, controlnet=not args.no_controlnet)
                 for mode in (("astra", "public", "base") if args.mode == "all" else (args.mode,))]
        print(json.dumps(plans, indent=2) if args.json else format_memory(plans))
        return 0
    try:
        result = compare(args.height, args.width, args.refs, args.ref_size, args.pose_scale, args.lora_rank)
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else format_report(result, args.steps, args.t2i_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
