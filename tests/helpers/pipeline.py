"""Inputs and a runner for end-to-end tests of the tiny `engine.AstraPipeline` (CPU, seconds).

`final_latent` runs a pipeline for a few steps and returns the final latent (the random tiny VAE
decoder squashes differences, the latent does not); `two_people_pose` is a two-person OpenPose
dict on a 64 x 64 canvas; `SUBJECTS` are two random subject images.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# The components of a diffusers FluxPipeline, as AstraPipeline takes them.
FLUX_PARTS = ("scheduler", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "transformer")
STEPS = 3


def random_image(seed, size=(72, 56)):
    """An RGB image of uniform noise, `size` = (width, height)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def two_people_pose(x_shift=0, subjects=(0, 1)):
    """Two people side by side on a 64 x 64 canvas, bound to `subjects` (None: unbound)."""
    def person(x, subject):
        points = [[x + 2 * (i % 4) + x_shift, 8 + 3 * i, 1] for i in range(18)]
        return {"pose_keypoints_2d": sum(points, []), "subject": subject}
    return {"canvas_width": 64, "canvas_height": 64,
            "people": [person(6, subjects[0]), person(38, subjects[1])]}


def final_latent(pipe, **kw):
    """The final latent: the random tiny VAE decoder squashes differences, the latent does not."""
    args = dict(prompt="Mia and Leo shaking hands", height=64, width=64, num_inference_steps=STEPS, seed=7,
                output_type="latent")
    args.update(kw)
    return pipe(**args).images[0].numpy()


SUBJECTS = [random_image(1), random_image(2, (40, 90))]
