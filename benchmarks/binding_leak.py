"""How much identity leaks past the subject binding, per depth and strength; and flex vs dense cost.

    python benchmarks/binding_leak.py [--depths 1 3 6 12 24] [--strengths 0.5 1 2 4] [--seeds 3]
                                      [--timing-repeats 7] [--json OUT.json]

Setup (random weights, fp32, CPU): a tiny FLUX DiT (width 64 = 2 heads x 32, one double block
per two single blocks as in FLUX's 19 + 38) of D blocks, an 8 x 8 latent, two 4 x 4 references,
a full-resolution 8 x 8 pose map and 16 text tokens. Subject 0 owns the left half of the canvas,
subject 1 the right half. Subject 0's reference tokens are then replaced by others, and we
measure how far every latent output token moves (L2 over channels):

    leak = mean move of latent tokens OUTSIDE region 0, bound / unbound (strength 0)
    keep = mean move of latent tokens INSIDE region 0,  bound / unbound

The binding cuts only the direct path (reference 0 <-> latent outside region 0). Variants try
the obvious remedies for the indirect paths:

* ``base``   the engine's binding (every block);
* ``names``  + the prompt tokens naming subject 0 (tokens 2-3 here) bound like its reference;
* ``pose``   + pose tokens outside region 0 kept away from reference 0 (a pose token overlays the
  latent patch it shares ids with);
* ``text``   + every text token kept away from every reference (an upper bound for the text
  path; it also blinds the prompt to the references, which DSM then must carry alone);
* ``first``  binding in the first half of the blocks only (rounded up); ``last``: in the second
  half only (with one block, both are that block).

The timing section runs one forward of a 12-block DiT at a 32 x 32 latent (two 16 x 16
references, full pose: 2,048 + 512 + text tokens) unbound, with the dense bias and with the
flex ids, interleaved round by round, and reports the median per-round ratio to unbound (thread
CPU time, one thread). Eager flex on the CPU materialises the scores (a warning says so): this
is the CPU cost only; the GPU one is in ``benchmarks/gpu_engine.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffusers import FluxTransformer2DModel  # noqa: E402

from engine.attention import RegionBinding  # noqa: E402
from engine.binding import region_attention_bias, region_binding  # noqa: E402
from engine.europe import StreamLayout  # noqa: E402
from engine.tiny import random_forward_inputs  # noqa: E402
from engine.transformer import astra_forward  # noqa: E402

CHANNELS, TEXT_DIM, TEXT = 16, 32, 16
NAME_TOKENS = (2, 3)
VARIANTS = ("base", "names", "pose", "text", "first", "last")


def dit(blocks: int, seed: int, width_heads: int = 2, head_dim: int = 32) -> FluxTransformer2DModel:
    torch.manual_seed(seed)
    double = max(1, round(blocks / 3))
    return FluxTransformer2DModel(
        patch_size=1, in_channels=CHANNELS, num_layers=double, num_single_layers=blocks - double,
        attention_head_dim=head_dim, num_attention_heads=width_heads, joint_attention_dim=TEXT_DIM,
        pooled_projection_dim=TEXT_DIM, guidance_embeds=True, axes_dims_rope=(8, 12, 12)).eval()


def inputs(layout: StreamLayout, seed: int) -> dict:
    return random_forward_inputs(layout, channels=CHANNELS, text_tokens=TEXT, text_dim=TEXT_DIM, seed=seed)


def halves(hw: tuple[int, int]) -> dict[int, np.ndarray]:
    left = np.zeros(hw, dtype=bool)
    left[:, : hw[1] // 2] = True
    return {0: left, 1: ~left}


def variant_binding(variant: str, layout: StreamLayout, regions, strength: float, blocks: int) -> RegionBinding:
    """The engine's binding, or one of the remedies (built by editing its id tables)."""
    names = np.zeros((TEXT, len(layout.ref_hws)), dtype=bool)
    names[list(NAME_TOKENS), 0] = True
    layers = {"first": range((blocks + 1) // 2), "last": range(blocks // 2, blocks)}.get(variant)
    binding = region_binding(layout, TEXT, regions, strength, name_mask=names if variant == "names" else None,
                             layers=layers)
    outside = binding.outside.clone()
    if variant == "pose":  # pose token (i, j) shares ids with latent (i, j): same region bits
        start = TEXT + layout.num_tokens - layout.num_latent
        outside[start:] = outside[TEXT:TEXT + layout.num_latent]
        outside[start:, -1] = False
    if variant == "text":
        outside[:TEXT, :-1] = True
    return RegionBinding(binding.owner, outside, binding.penalty, binding.layers)


@torch.no_grad()
def moves(transformer, x: dict, changed: torch.Tensor, binding: RegionBinding | None) -> torch.Tensor:
    # Every-block bindings run as their dense bias (equal to 1e-5, tests/engine/test_flex_binding.py,
    # and ~10x faster eagerly on the CPU); per-block ones need the flex path.
    extra = {}
    if binding is not None:
        extra = dict(binding=binding) if binding.layers is not None else dict(attention_bias=binding.dense_bias())
    a = astra_forward(transformer, **extra, **x)
    b = astra_forward(transformer, **extra, **{**x, "conditions": changed})
    return (a - b).norm(dim=-1)[0]


def leak_table(depths, strengths, seeds: int) -> list[dict]:
    layout = StreamLayout((8, 8), ((4, 4), (4, 4)), (8, 8))
    regions = halves((8, 8))
    inside = torch.from_numpy(regions[0].reshape(-1))
    rows = []
    for depth in depths:
        per = {}
        for seed in range(seeds):
            transformer = dit(depth, seed)
            x = inputs(layout, seed + 100)
            changed = x["conditions"].clone()
            g = torch.Generator().manual_seed(seed + 200)
            changed[:, :16] = torch.randn(1, 16, CHANNELS, generator=g)  # a different subject 0
            free = moves(transformer, x, changed, None)
            for strength in strengths:
                for variant in VARIANTS:
                    bound = moves(transformer, x, changed, variant_binding(variant, layout, regions, strength, depth))
                    leak = (bound[~inside].mean() / free[~inside].mean()).item()
                    keep = (bound[inside].mean() / free[inside].mean()).item()
                    per.setdefault((strength, variant), []).append((leak, keep))
        for (strength, variant), values in per.items():
            rows.append(dict(depth=depth, strength=strength, variant=variant,
                             leak=statistics.mean(v[0] for v in values), keep=statistics.mean(v[1] for v in values)))
    return rows


def timing(repeats: int) -> dict:
    layout = StreamLayout((32, 32), ((16, 16), (16, 16)), (32, 32))
    transformer = dit(12, 0, width_heads=4, head_dim=32)
    x = inputs(layout, 1)
    regions = halves((32, 32))
    dense = region_attention_bias(layout, TEXT, regions, 1.0)
    flex = region_binding(layout, TEXT, regions, 1.0)
    runs = {"none": dict(), "dense": dict(attention_bias=dense), "flex": dict(binding=flex)}
    times = {name: [] for name in runs}
    with torch.no_grad():
        for extra in runs.values():  # warm-up (flex compiles its eager wrapper once)
            astra_forward(transformer, **x, **extra)
        for _ in range(repeats):
            for name, extra in runs.items():
                start = time.thread_time()
                astra_forward(transformer, **x, **extra)
                times[name].append(time.thread_time() - start)
    ratio = {name: statistics.median(t / n for t, n in zip(times[name], times["none"])) for name in runs}
    return dict(tokens=TEXT + layout.num_tokens, ms={k: 1000 * statistics.median(v) for k, v in times.items()},
                ratio_to_unbound=ratio,
                flex_over_dense=statistics.median(f / d for f, d in zip(times["flex"], times["dense"])))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 3, 6, 12, 24])
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--timing-repeats", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")

    rows = leak_table(args.depths, args.strengths, args.seeds)
    print(f"Leak = move outside region 0 / unbound move (keep = same inside), mean of {args.seeds} seeds\n")
    print("| blocks | strength | " + " | ".join(f"{v} leak / keep" for v in VARIANTS) + " |")
    print("|---:|---:|" + "---:|" * len(VARIANTS))
    for depth in args.depths:
        for strength in args.strengths:
            cells = {r["variant"]: r for r in rows if r["depth"] == depth and r["strength"] == strength}
            print(f"| {depth} | {strength:g} | " + " | ".join(
                f"{cells[v]['leak']:.3f} / {cells[v]['keep']:.2f}" for v in VARIANTS) + " |")
    result = dict(leak=rows)
    if args.timing_repeats > 0:
        t = timing(args.timing_repeats)
        result["timing"] = t
        print(f"\nCPU cost, 12 blocks, {t['tokens']} tokens, median of {args.timing_repeats} interleaved rounds:")
        print("| path | ms / forward | x unbound |\n|---|---:|---:|")
        for name in ("none", "dense", "flex"):
            print(f"| {name} | {t['ms'][name]:.0f} | {t['ratio_to_unbound'][name]:.2f} |")
        print(f"flex / dense (median per-round ratio): {t['flex_over_dense']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
