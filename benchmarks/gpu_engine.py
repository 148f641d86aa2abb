"""One ASTRA denoising step at FLUX.1-dev's real size on one GPU: ms/step and peak memory.

    python benchmarks/gpu_engine.py            # full table, < 5 min on one H100/H200
    python benchmarks/gpu_engine.py --quick    # the key rows, < 2 min
    python benchmarks/gpu_engine.py --dry-run  # CPU, tiny DiT: the same rows and table layout
    python benchmarks/gpu_engine.py --json OUT.json

A ``FluxTransformer2DModel`` of FLUX.1-dev's configuration (19 double + 38 single blocks,
hidden 3072 = 24 heads x 128, T5 width 4096) is built directly on the GPU with random bf16
weights (no download: the timing does not depend on the values). One step is one transformer
forward (FLUX.1-dev is guidance-distilled: no CFG pass) through ``engine.transformer.astra_forward``
at 1024^2: 4,096 latent tokens + 512 text tokens, two 320-px references (2 x 400 tokens,
EURoPE/UnoPE ids), a pose map at full (4,096 tokens) or half resolution (1,024 tokens), and the
subject binding as a dense S x S additive mask (SDPA) or as FlexAttention ids (``engine.attention``).

Rows: text-only; 2 refs; 2 refs + pose (scale 1, 2); binding dense / flex; eager / compiled
(``compile_repeated_blocks``, inductor); bf16 / fp8 weight-only (torchao, ``engine.quantize``).
Each row: warm-up forwards, then the median of timed forwards (CUDA-synchronised), the peak
memory allocated during the row, and the ratio to the text-only row of the same precision and
mode. Without a GPU it exits with a message; ``--dry-run`` runs the same rows on the CPU with a
tiny DiT at 256^2 (compiled rows with the ``aot_eager`` backend, which needs no C++ compiler).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffusers import FluxTransformer2DModel  # noqa: E402

from engine.attention import install_binding_processors  # noqa: E402
from engine.binding import region_attention_bias, region_binding  # noqa: E402
from engine.europe import StreamLayout  # noqa: E402
from engine.tiny import random_forward_inputs  # noqa: E402
from engine.transformer import astra_forward  # noqa: E402

FLUX_DEV_CONFIG = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                       num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768,
                       guidance_embeds=True, axes_dims_rope=(16, 56, 56))
TINY_CONFIG = dict(patch_size=1, in_channels=64, num_layers=2, num_single_layers=4, attention_head_dim=32,
                   num_attention_heads=2, joint_attention_dim=64, pooled_projection_dim=32,
                   guidance_embeds=True, axes_dims_rope=(8, 12, 12))
NO_GPU = ("benchmarks/gpu_engine.py measures FLUX.1-dev-sized steps and needs a CUDA GPU (~40 GB free; "
          "PyTorch sees none). Run it on a GPU machine, or pass --dry-run for the CPU rehearsal.")


@dataclass(frozen=True)
class Case:
    """One row: what the image stream holds and how the step runs."""

    name: str
    refs: int = 0
    pose_scale: int | None = None
    binding: str | None = None  # None, "dense" or "flex"
    compiled: bool = False
    fp8: bool = False


FULL = [
    Case("text-only"), Case("2 refs", refs=2), Case("2 refs + pose s1", refs=2, pose_scale=1),
    Case("2 refs + pose s2", refs=2, pose_scale=2),
    Case("2 refs + pose s1 + dense binding", refs=2, pose_scale=1, binding="dense"),
    Case("2 refs + pose s1 + flex binding", refs=2, pose_scale=1, binding="flex"),
    Case("text-only", compiled=True), Case("2 refs + pose s1", refs=2, pose_scale=1, compiled=True),
    Case("2 refs + pose s1 + dense binding", refs=2, pose_scale=1, binding="dense", compiled=True),
    Case("2 refs + pose s1 + flex binding", refs=2, pose_scale=1, binding="flex", compiled=True),
    Case("text-only", fp8=True), Case("2 refs + pose s1 + flex binding", refs=2, pose_scale=1, binding="flex",
                                      fp8=True),
    Case("text-only", compiled=True, fp8=True),
    Case("2 refs + pose s1 + flex binding", refs=2, pose_scale=1, binding="flex", compiled=True, fp8=True),
]
QUICK_NAMES = {("text-only", False, False), ("2 refs + pose s1", False, False),
               ("2 refs + pose s1 + dense binding", False, False), ("2 refs + pose s1 + flex binding", False, False),
               ("text-only", True, False), ("2 refs + pose s1 + flex binding", True, False),
               ("text-only", False, True), ("2 refs + pose s1 + flex binding", False, True)}
QUICK = [c for c in FULL if (c.name, c.compiled, c.fp8) in QUICK_NAMES]


def build_transformer(config: dict, device: torch.device, dtype: torch.dtype) -> FluxTransformer2DModel:
    """Random weights, built on ``device`` in ``dtype`` (a 12 B model initialises in seconds on a GPU)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = FluxTransformer2DModel(**config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval().requires_grad_(False)


def step_inputs(case: Case, latent_hw: tuple[int, int], ref_hw: tuple[int, int], text: int, config: dict,
                device: torch.device, dtype: torch.dtype) -> dict:
    refs = (ref_hw,) * case.refs
    pose_hw = None
    if case.pose_scale is not None:
        pose_hw = (latent_hw[0] // case.pose_scale, latent_hw[1] // case.pose_scale)
    layout = StreamLayout(latent_hw, refs, pose_hw, case.pose_scale or 1)
    x = random_forward_inputs(layout, channels=config["in_channels"], text_tokens=text,
                              text_dim=config["joint_attention_dim"], pooled_dim=config["pooled_projection_dim"])
    # Activations in the run's dtype; ids keep theirs and guidance stays fp32, as the pipeline passes them.
    for name, value in x.items():
        if value is not None:
            x[name] = value.to(device) if name.endswith("_ids") else value.to(device, torch.float32 if name == "guidance" else dtype)
    if case.binding is not None:
        left = np.zeros(latent_hw, dtype=bool)
        left[:, : latent_hw[1] // 2] = True
        regions = {0: left, 1: ~left}
        if case.binding == "dense":
            x["attention_bias"] = region_attention_bias(layout, text, regions, 1.0, device=device, dtype=dtype)
        else:
            x["binding"] = region_binding(layout, text, regions, 1.0, device=device)
    return x, text + layout.num_tokens


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_case(model, x: dict, device: torch.device, warmup: int, repeats: int) -> tuple[float, float, float]:
    """(median ms, first-call s, peak GiB) of ``repeats`` forwards after ``warmup``."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with torch.no_grad():
        start = time.perf_counter()
        astra_forward(model, **x)
        synchronize(device)
        first = time.perf_counter() - start
        for _ in range(max(0, warmup - 1)):
            astra_forward(model, **x)
        synchronize(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            astra_forward(model, **x)
            synchronize(device)
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return 1000 * statistics.median(times), first, peak


def run(cases: list[Case], *, dry_run: bool, warmup: int, repeats: int, budget_s: float) -> list[dict]:
    device = torch.device("cpu") if dry_run else torch.device("cuda")
    config = TINY_CONFIG if dry_run else FLUX_DEV_CONFIG
    dtype = torch.float32 if dry_run else torch.bfloat16
    latent_hw, ref_hw, text = ((16, 16), (5, 5), 32) if dry_run else ((64, 64), (20, 20), 512)
    backend = "aot_eager" if dry_run else "inductor"
    dtype_name = "fp32" if dry_run else "bf16"
    started = time.perf_counter()
    model = build_transformer(config, device, dtype)
    install_binding_processors(model)
    print(f"# {'dry run: tiny DiT on the CPU' if dry_run else torch.cuda.get_device_name(device)}; "
          f"{sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters, built in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    rows, compiled, quantized = [], False, False
    # Rows in order eager bf16 -> compiled bf16 -> fp8 (quantised in place, recompiled): one model.
    for case in sorted(cases, key=lambda c: (c.fp8, c.compiled)):
        if time.perf_counter() - started > budget_s:
            print(f"# budget of {budget_s:.0f} s spent: skipping {case.name} (compiled={case.compiled}, "
                  f"fp8={case.fp8})", flush=True)
            continue
        if case.fp8 and not quantized:
            from engine.quantize import quantize_transformer

            if compiled:  # a compiled model is not un-compiled: fresh weights, freed first
                del model
                torch._dynamo.reset()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                model = build_transformer(config, device, dtype)
                install_binding_processors(model)
            quantize_transformer(model, "fp8")
            quantized, compiled = True, False
        if case.compiled and not compiled:
            model.compile_repeated_blocks(backend=backend, fullgraph=True)
            compiled = True
        if not case.compiled and compiled:
            raise RuntimeError("rows are ordered eager before compiled")
        x, tokens = step_inputs(case, latent_hw, ref_hw, text, config, device, dtype)
        try:
            ms, first, peak = time_case(model, x, device, warmup, repeats)
            rows.append(dict(asdict(case), tokens=tokens, ms=ms, first_s=first, peak_gib=peak, dtype=dtype_name))
        except torch.cuda.OutOfMemoryError:
            rows.append(dict(asdict(case), tokens=tokens, ms=float("nan"), first_s=float("nan"),
                             peak_gib=float("inf"), dtype=dtype_name))
            torch.cuda.empty_cache()
        row = rows[-1]
        print(f"# {case.name:34s} compiled={case.compiled!s:5s} fp8={case.fp8!s:5s} {row['ms']:9.1f} ms  "
              f"(first call {row['first_s']:.1f} s)", flush=True)
        del x
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: ms/step, peak memory, ratio to the text-only row of the same mode and precision."""
    base = {(r["compiled"], r["fp8"]): r["ms"] for r in rows if r["name"] == "text-only"}
    lines = ["| case | weights | mode | tokens | ms / step | x text-only | peak GiB | first call s |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        ref = base.get((r["compiled"], r["fp8"]))
        ratio = f"{r['ms'] / ref:.2f}" if ref else "-"
        lines.append(f"| {r['name']} | {'fp8' if r['fp8'] else r['dtype']} | {'compiled' if r['compiled'] else 'eager'} "
                     f"| {r['tokens']} | {r['ms']:.1f} | {ratio} | {_gib(r['peak_gib'])} | {r['first_s']:.1f} |")
    return "\n".join(lines)


def _gib(value: float) -> str:
    return "-" if value != value else ("OOM" if value == float("inf") else f"{value:.1f}")  # NaN: CPU


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the key rows only (< 2 min on an H100/H200)")
    parser.add_argument("--dry-run", action="store_true", help="tiny DiT on the CPU: the same rows and table")
    parser.add_argument("--repeats", type=int, default=None, help="timed forwards per row (default 5, quick 3)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--budget-s", type=float, default=None,
                        help="stop starting rows after this many seconds (default 270, quick 110)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print(NO_GPU, file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
    if args.dry_run:
        torch.set_num_threads(1)
    repeats = args.repeats or (3 if args.quick else 5)
    budget = args.budget_s or (110.0 if args.quick else 270.0)
    rows = run(QUICK if args.quick else FULL, dry_run=args.dry_run, warmup=args.warmup, repeats=repeats,
               budget_s=budget)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(dict(dry_run=args.dry_run, quick=args.quick, rows=rows), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
