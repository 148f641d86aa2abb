"""MOSAIC's multi-reference disentanglement term (MOSAIC eq. 8, 11-14), optional in training.

MOSAIC pushes different references' attention maps over the target latent apart:

* eq. 8: ``A_ref->tgt[u, v]`` = softmax over the target tokens v of ``q_u . k_v / sqrt(d)``
  for a reference token u, averaged over the selected DiT blocks (we also average heads);
* eq. 11-12: reference k's map ``a^(k)`` = the normalised mean of its tokens' rows;
* eq. 13: symmetric KL between two references' maps;
* eq. 14: ``L_MD = -1 / (K (K-1)) * sum_{i != j} dist(a^(i), a^(j))``.

MOSAIC averages over annotated correspondence points of each reference; we have none, so every
token of reference k counts (P^(k) = all its tokens). It applies the term to early blocks (its
appendix A.1.6: early blocks work best), here double blocks, where the image stream has its own
projections. The maps are recomputed from the block's own (LoRA-adapted) q/k projections by a
wrapper around the block's attention processor: FLUX's attention itself is left untouched.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from diffusers.models.embeddings import apply_rotary_emb

EPS = 1e-8


class _ProbeState:
    """What the probes need for one forward, and what they record."""

    def __init__(self, num_latent: int, ref_span: tuple[int, int]) -> None:
        self.num_latent = num_latent
        self.ref_span = ref_span  # [start, stop) of all reference tokens in the image stream
        self.maps: list[torch.Tensor] = []


class _RefAttentionProbe:
    """Attention processor wrapper: runs the original, then records ref->latent attention (eq. 8)."""

    def __init__(self, processor, state: _ProbeState) -> None:
        self.processor = processor
        self.state = state

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None,
                 image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None):
        out = self.processor(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
        state, text_len = self.state, encoder_hidden_states.shape[1]
        start, stop = state.ref_span
        query = attn.norm_q(attn.to_q(hidden_states[:, start:stop]).unflatten(-1, (-1, attn.head_dim)))
        key = attn.norm_k(attn.to_k(hidden_states[:, :state.num_latent]).unflatten(-1, (-1, attn.head_dim)))
        if image_rotary_emb is not None:  # rows of the joint [text | image] sequence
            cos, sin = image_rotary_emb
            query = apply_rotary_emb(query, (cos[text_len + start:text_len + stop],
                                             sin[text_len + start:text_len + stop]), sequence_dim=1)
            key = apply_rotary_emb(key, (cos[text_len:text_len + state.num_latent],
                                         sin[text_len:text_len + state.num_latent]), sequence_dim=1)
        logits = torch.einsum("buhd,bvhd->bhuv", query.float(), key.float()) / math.sqrt(attn.head_dim)
        state.maps.append(logits.softmax(dim=-1).mean(dim=1))  # (B, N_ref, N_tgt), heads averaged
        return out


@contextmanager
def record_reference_attention(transformer, blocks: Sequence[int], num_latent: int,
                               ref_slices: Sequence[slice]) -> Iterator[_ProbeState | None]:
    """While inside, the double blocks ``blocks`` record their ref->latent attention maps.

    Yields None (and records nothing) with fewer than two references: the term needs pairs.
    """
    if len(ref_slices) < 2 or not blocks:
        yield None
        return
    state = _ProbeState(num_latent, (ref_slices[0].start, ref_slices[-1].stop))
    attns = [transformer.transformer_blocks[i].attn for i in blocks]
    originals = [attn.processor for attn in attns]
    for attn, processor in zip(attns, originals):
        attn.processor = _RefAttentionProbe(processor, state)
    try:
        yield state
    finally:
        for attn, processor in zip(attns, originals):
            attn.processor = processor


def disentanglement_loss(maps: Sequence[torch.Tensor], ref_slices: Sequence[slice]) -> torch.Tensor:
    """MOSAIC eq. 12-14 from recorded (B, N_ref, N_tgt) maps (one per block, averaged: eq. 8).

    ``ref_slices`` are the references' spans in the image stream; the maps' rows start at the
    first reference. Returns the batch mean of ``L_MD`` (negative: minimising it pushes apart).
    """
    attention = torch.stack(list(maps)).mean(dim=0)
    offset = ref_slices[0].start
    per_ref = []
    for span in ref_slices:
        a = attention[:, span.start - offset:span.stop - offset].mean(dim=1)  # eq. 12
        per_ref.append(a / a.sum(dim=-1, keepdim=True).clamp_min(EPS))
    k = len(per_ref)
    total = attention.new_zeros(attention.shape[0])
    for i in range(k):
        for j in range(k):
            if i != j:
                total = total + _symmetric_kl(per_ref[i], per_ref[j])
    return -(total / (k * (k - 1))).mean()


def _symmetric_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """eq. 13: (KL(p||q) + KL(q||p)) / 2 over the last axis."""
    p, q = p.clamp_min(EPS), q.clamp_min(EPS)
    return 0.5 * (p * (p / q).log()).sum(-1) + 0.5 * (q * (q / p).log()).sum(-1)
