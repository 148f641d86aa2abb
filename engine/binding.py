"""Binding subjects to skeletons (beyond the paper: ASTRA leaves "who is where" to the prompt).

Every person of the pose scene may carry a subject index. Two mechanisms use it:

* **Region bias in the DiT.** Each subject's region (its people's dilated boxes, from
  ``pose_db.geometry.region_mask``) on the latent token grid. An additive attention bias of
  ``-strength * BIAS_PER_STRENGTH`` between that subject's reference tokens and every latent
  token outside the region, both ways, so identity features flow only where its skeleton stands
  (in the spirit of Sigma-Gen's routing maps).
* **Name binding in DSM.** The tokens of a subject's name in the prompt ("Mia") attend only to
  that subject's reference inside DSM, with the same bias towards the other references.

Strength 0 turns both off (no bias tensor at all, so the fast attention path stays in use).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch
from pose_db.geometry import region_mask
from pose_db.scene import PoseScene

from engine.europe import StreamLayout

# Logit penalty per unit of strength: at strength 1 a blocked pair keeps e^-10 ~ 5e-5 of its weight.
BIAS_PER_STRENGTH = 10.0
REGION_DILATE = 0.1


def subject_regions(scene: PoseScene | None, latent_hw: tuple[int, int],
                    dilate: float = REGION_DILATE) -> dict[int, np.ndarray]:
    """Per assigned subject, a (h, w) bool mask of its region on the latent token grid.

    ``scene`` must already be fitted to the output canvas (as its pose map is).
    """
    if scene is None:
        return {}
    return region_mask(scene, *latent_hw, dilate=dilate)


def region_attention_bias(layout: StreamLayout, text_len: int, regions: dict[int, np.ndarray],
                          strength: float, device: torch.device | str = "cpu",
                          dtype: torch.dtype = torch.float32) -> torch.Tensor | None:
    """(1, 1, S, S) additive bias over the joint sequence ``[text | image stream]``, or None.

    For each subject k with a region: reference-k tokens and latent tokens outside region k
    attend to each other with ``-strength * BIAS_PER_STRENGTH``. Subjects without a reference
    token range (more assignments than references) are ignored; ``check_inputs`` forbids them.
    """
    if strength <= 0 or not regions:
        return None
    size = text_len + layout.num_tokens
    # Built on the target device in the target dtype: at 1024^2 with references and a pose map
    # it is ~9.5k^2 entries, too big to build on the host and copy every generation.
    bias = torch.zeros(size, size, device=device, dtype=dtype)
    penalty = -strength * BIAS_PER_STRENGTH
    for subject, mask in regions.items():
        if subject >= len(layout.ref_slices):
            continue
        outside = text_len + torch.from_numpy(np.flatnonzero(~mask.reshape(-1))).to(device)
        ref = layout.ref_slices[subject]
        ref_idx = torch.arange(text_len + ref.start, text_len + ref.stop, device=device)
        bias[outside[:, None], ref_idx[None, :]] = penalty
        bias[ref_idx[:, None], outside[None, :]] = penalty
    return bias[None, None]


def name_token_mask(prompt: str, names: Sequence[str | None], offsets: Sequence[tuple[int, int]]) -> np.ndarray:
    """(T, N) bool: token t lies in a mention of subject n's name.

    Args:
        prompt: the prompt as tokenised.
        names: one name per subject (None or empty: unnamed).
        offsets: per token its (start, end) character span in ``prompt`` (a fast tokenizer's
            ``offset_mapping``; special and padding tokens have (0, 0)).
    """
    spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    mask = np.zeros((len(spans), len(names)), dtype=bool)
    real = spans[:, 1] > spans[:, 0]
    for n, name in enumerate(names):
        if not name or not name.strip():
            continue
        for match in re.finditer(rf"(?<!\w){re.escape(name.strip())}(?!\w)", prompt, flags=re.IGNORECASE):
            mask[:, n] |= real & (spans[:, 0] < match.end()) & (spans[:, 1] > match.start())
    return mask


def name_binding_bias(name_mask: np.ndarray, strength: float) -> torch.Tensor | None:
    """(1, T, N) DSM bias: a token naming subject k is pushed away from the other references."""
    if strength <= 0 or not name_mask.any():
        return None
    named = torch.from_numpy(name_mask)
    # Tokens naming nobody stay unbound; a token naming k is penalised on every reference but k's.
    blocked = named.any(dim=1, keepdim=True) & ~named
    return (blocked.float() * (-strength * BIAS_PER_STRENGTH))[None]
