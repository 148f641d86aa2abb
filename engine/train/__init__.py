"""Training ASTRA adapters: the single-stage LoRA + DSM trainer on accelerate (no gradio).

    python -m engine.train --data DIR --base black-forest-labs/FLUX.1-dev --out DIR [--config train.yaml]
    accelerate launch --config_file engine/train/configs/accelerate_8gpu_zero2.yaml -m engine.train ...
    python -m engine.train --tiny --steps 40 --out /tmp/tiny-adapter      # CPU, about a minute

* ``engine.train.config``: :class:`TrainConfig` (YAML), every default with its source;
* ``engine.train.dataset``: the ``train.jsonl`` format, validation by line, buckets, sampler;
* ``engine.train.trainer``: :class:`Trainer` (accelerate, checkpoints, resume, validation, cache);
* ``engine.train.mosaic``: MOSAIC's multi-reference disentanglement term (off by default);
* ``engine.train.tiny_data``: the tiny run's self-written samples;
* ``engine.train.tracking``: an offline CSV tracker for accelerate.
"""
