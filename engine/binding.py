"""Binding subjects to skeletons (beyond the paper: ASTRA leaves "who is where" to the prompt).

Every person of the pose scene may carry a subject index. Two mechanisms use it:

* **Region bias in the DiT.** Each subject's region (its people's dilated boxes, from
  ``pose_db.scene.geometry.region_mask``) on the latent token grid. An additive attention bias of
  ``-strength * BIAS_PER_STRENGTH`` between that subject's reference tokens and every latent
  token outside the region, both ways, so identity features flow only where its skeleton stands
  (in the spirit of Sigma-Gen's routing maps).
* **Name binding in DSM.** The tokens of a subject's name in the prompt ("Mia") attend only to
  that subject's reference inside DSM, with the same bias towards the other references.

Strength 0 turns both off (no bias tensor at all, so the fast attention path stays in use).

The region bias exists twice: dense (:func:`region_attention_bias`, an S x S ``attn_mask`` for
SDPA: the reference) and as FlexAttention ids (:func:`region_binding`, ``engine.attention``: the
GPU path, no mask, fused under ``torch.compile``); the tests hold them equal to 1e-5.

What the knob guarantees: it cuts the *direct* attention path between a subject's reference and
the latent outside its region. Identity still reaches those tokens indirectly, through tokens
that attended to the reference in an earlier block (in-region latent, text, pose), so in a deep
stack a change of reference k still moves latent tokens outside k's region by a fraction of the
unbound change that grows with depth; ``benchmarks/binding_leak.py`` measures it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

from engine.attention import RegionBinding
from engine.europe import StreamLayout
from pose_db.scene.geometry import region_mask
from pose_db.scene.model import PoseScene

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
                          dtype: torch.dtype = torch.float32, *,
                          name_mask: np.ndarray | None = None) -> torch.Tensor | None:
    """(1, 1, S, S) additive bias over the joint sequence ``[text | image stream]``, or None.

    The dense reference of the binding (FlexAttention's :func:`region_binding` must equal it).
    For each subject k with a region: reference-k tokens and latent tokens outside region k
    attend to each other with ``-strength * BIAS_PER_STRENGTH``. Subjects without a reference
    token range (more assignments than references) are ignored; ``check_inputs`` forbids them.

    Args:
        name_mask: optional (text_len, N) bool from :func:`name_token_mask`: the prompt tokens
            naming subject k are then bound like k's reference (kept away from the latent
            outside k's region). Off by default: see ``benchmarks/binding_leak.py`` for its effect.
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
        if name_mask is not None:
            named = torch.from_numpy(np.flatnonzero(_first_owner(name_mask, len(layout.ref_slices)) == subject))
            ref_idx = torch.cat([named.to(device), ref_idx])
        bias[outside[:, None], ref_idx[None, :]] = penalty
        bias[ref_idx[:, None], outside[None, :]] = penalty
    return bias[None, None]


def region_binding(layout: StreamLayout, text_len: int, regions: dict[int, np.ndarray], strength: float, *,
                   name_mask: np.ndarray | None = None, layers: Sequence[int] | None = None,
                   device: torch.device | str = "cpu") -> RegionBinding | None:
    """The binding as FlexAttention inputs (``engine.attention``): per-token ids, no S x S tensor.

    Same arguments and the same bias as :func:`region_attention_bias` (its dense reference),
    plus ``layers``: the DiT block indices that bind (None: every block; the dense bias has no
    such choice). Returns None when binding is off.
    """
    if strength <= 0 or not regions:
        return None
    subjects = len(layout.ref_slices)
    size = text_len + layout.num_tokens
    owner = np.full(size, subjects, dtype=np.int32)
    outside = np.zeros((size, subjects + 1), dtype=bool)
    text_owner = _first_owner(name_mask, subjects) if name_mask is not None else None
    for subject, mask in regions.items():
        if subject >= subjects:
            continue
        ref = layout.ref_slices[subject]
        owner[text_len + ref.start:text_len + ref.stop] = subject
        if text_owner is not None:
            owner[:text_len][text_owner == subject] = subject
        outside[text_len:text_len + layout.num_latent, subject] = ~mask.reshape(-1)
    return RegionBinding(owner=torch.from_numpy(owner).to(device), outside=torch.from_numpy(outside).to(device),
                         penalty=torch.tensor(-strength * BIAS_PER_STRENGTH, dtype=torch.float32, device=device),
                         layers=tuple(sorted(set(layers))) if layers is not None else None)


def _first_owner(name_mask: np.ndarray, subjects: int) -> np.ndarray:
    """(T,) per prompt token the first subject it names, ``subjects`` for none (a token naming
    two subjects binds to the first: the two names overlap, the prompt cannot say which)."""
    named = name_mask[:, :subjects]
    return np.where(named.any(axis=1), named.argmax(axis=1), subjects)


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
