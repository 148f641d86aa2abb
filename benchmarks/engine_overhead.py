"""Overhead of ASTRA's additions over the stock diffusers FLUX forward, at the same token count.

    python benchmarks/engine_overhead.py [--repeats 7] [--image 256] [--threads 1] [--json OUT.json]

A mid-size FluxTransformer2DModel (4 double + 8 single blocks, width 768 = 6 heads x 128,
T5 width 4096, random weights, float32, CPU) runs one denoising forward on the same image
stream of N tokens (latent + two references + a full-resolution pose map) five ways, interleaved
round by round so machine noise hits all alike:

* stock   ``transformer(...)`` on the N tokens (diffusers, nothing of ours);
* off     ``astra_forward`` (concatenation, EURoPE ids, slicing), DSM and binding off;
* dsm     + DSM's per-block text offsets (forward pre-hooks) and the global offset;
* bind    + the subject-binding attention bias only (two subjects with regions);
* on      DSM and binding together (what a posed two-subject generation runs each step).

Each call is timed by the CPU time of the calling thread (robust when other processes share
the machine; with --threads 1 all of torch's work runs on that thread) and by wall time. A
ratio is the median over rounds of (variant / stock) within the same round. DSM itself runs
once per generation, not per step, and is reported separately. On a GPU the bias will cost
more than here (not measurable on this machine): PyTorch's SDPA cannot use its FlashAttention
kernel with an additive mask and falls back to the memory-efficient one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffusers import FluxTransformer2DModel  # noqa: E402

from engine.binding import region_attention_bias  # noqa: E402
from engine.dsm import DisentangledSemanticModulation, DSMConfig  # noqa: E402
from engine.europe import StreamLayout  # noqa: E402
from engine.transformer import astra_forward, dit_blocks, modulate_text_stream  # noqa: E402

TEXT_TOKENS, TEXT_DIM, CLIP_TOKENS, CLIP_DIM = 128, 4096, 257, 1024


def mid_transformer() -> FluxTransformer2DModel:
    torch.manual_seed(0)
    return FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=4, num_single_layers=8, attention_head_dim=128,
        num_attention_heads=6, joint_attention_dim=TEXT_DIM, pooled_projection_dim=768, guidance_embeds=True,
        axes_dims_rope=(16, 56, 56)).eval()


def trained_dsm(transformer: FluxTransformer2DModel) -> DisentangledSemanticModulation:
    dsm = DisentangledSemanticModulation(DSMConfig(
        text_dim=TEXT_DIM, vision_dim=CLIP_DIM, inner_dim=transformer.inner_dim,
        num_layers=len(dit_blocks(transformer)))).eval()
    with torch.no_grad():
        for p in (dsm.to_global_offset.weight, dsm.layer_up):
            p.normal_(std=0.02)
    return dsm


def timed(fn) -> tuple[float, float]:
    """(thread CPU seconds, wall seconds) of one call."""
    cpu, wall = time.thread_time(), time.perf_counter()
    fn()
    return time.thread_time() - cpu, time.perf_counter() - wall


VARIANTS = ("stock", "off", "dsm", "bind", "on")


@torch.no_grad()
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (medians over them)")
    parser.add_argument("--image", type=int, default=256, help="output side in pixels (latent = side/16 tokens)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: CPU time is exact)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    side = args.image // 16
    ref = max(side * 5 // 8, 1)  # UNO: 320-px references next to a 512-px output
    layout = StreamLayout((side, side), ((ref, ref), (ref, ref)), (side, side))
    transformer = mid_transformer()
    g = torch.Generator().manual_seed(0)
    stream = torch.randn(1, layout.num_tokens, 64, generator=g)
    latents, conditions = stream[:, :layout.num_latent], stream[:, layout.num_latent:]
    text = torch.randn(1, TEXT_TOKENS, TEXT_DIM, generator=g)
    common = dict(pooled_projections=torch.randn(1, 768, generator=g), timestep=torch.tensor([0.6]),
                  guidance=torch.tensor([3.5]), txt_ids=torch.zeros(TEXT_TOKENS, 3), img_ids=layout.position_ids())

    dsm = trained_dsm(transformer)
    vision = torch.randn(1, 2, CLIP_TOKENS, CLIP_DIM, generator=g)
    dsm_cpu = statistics.median(timed(lambda: dsm(text, vision))[0] for _ in range(3))
    offsets = dsm(text, vision)
    modulated = text + offsets.global_offset
    left = np.zeros((side, side), dtype=bool)
    left[:, : side // 2] = True
    bias = region_attention_bias(layout, TEXT_TOKENS, {0: left, 1: ~left}, strength=1.0)

    def ours(layer_offsets, attention_bias, encoder_hidden_states):
        with modulate_text_stream(transformer, layer_offsets):
            astra_forward(transformer, latents, conditions=conditions, encoder_hidden_states=encoder_hidden_states,
                          attention_bias=attention_bias, **common)

    calls = {
        "stock": lambda: transformer(hidden_states=stream, encoder_hidden_states=text, return_dict=False, **common),
        "off": lambda: ours(None, None, text),
        "dsm": lambda: ours(offsets.layer_offsets, None, modulated),
        "bind": lambda: ours(None, bias, text),
        "on": lambda: ours(offsets.layer_offsets, bias, modulated),
    }
    for fn in calls.values():  # warm-up
        fn()
    cpu = {name: [] for name in VARIANTS}
    wall = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):
        for name in VARIANTS:
            c, w = timed(calls[name])
            cpu[name].append(c)
            wall[name].append(w)

    def ratios(times: dict) -> dict:
        return {name: round(statistics.median(v / s for v, s in zip(times[name], times["stock"])), 4)
                for name in VARIANTS[1:]}

    result = {
        "config": "4 double + 8 single blocks, width 768, float32, CPU",
        "threads": torch.get_num_threads(),
        "tokens": {"text": TEXT_TOKENS, "latent": layout.num_latent, "image_stream": layout.num_tokens},
        "repeats": args.repeats,
        "median_cpu_s": {k: round(statistics.median(v), 4) for k, v in cpu.items()},
        "median_wall_s": {k: round(statistics.median(v), 4) for k, v in wall.items()},
        "ratio_cpu": ratios(cpu),
        "ratio_wall": ratios(wall),
        "dsm_once_per_generation_cpu_s": round(dsm_cpu, 4),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
