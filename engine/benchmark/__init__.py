"""Evaluation: the paper's benchmarks (COCO complex pose, DreamBench) and metrics (OKS, CLIP-I,
CLIP-T, DINO), runnable on any engine mode. CLI: ``python -m engine.benchmark`` (build-coco,
build-dreambench, run, report); metrics in :mod:`engine.benchmark.metrics`."""
