"""DSM: Disentangled Semantic Modulation (paper section 3.2, eq. 7-8).

Identity is re-expressed as an offset on the text condition instead of being left to the DiT's
self-attention: ``dE = Phi(F_v, E_t)`` and ``E' = E_t + dE``. Phi is a small cross-attention
adapter whose queries are the T5 text embeddings and whose keys/values are CLIP-vision hidden
states of the references (patch tokens of an intermediate layer, not the pooled vector), each
reference tagged with a learned subject-index embedding so several subjects stay apart.

It modulates hierarchically: a global offset on the T5 embeddings (before FLUX's
``context_embedder``) and a finer low-rank offset per DiT block on the text stream, applied by
``engine.transformer.modulate_text_stream``. Every output projection starts at zero, so an
untrained DSM is exactly the identity. The offsets depend on the text and the references, not
on the timestep: a pipeline computes them once per generation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DSMConfig:
    """Sizes of the DSM adapter. Defaults are FLUX.1-dev (T5-XXL, 19 + 38 blocks of width 3072)
    with a CLIP ViT-L/14 vision encoder.

    Args:
        text_dim: width of the T5 embeddings (FLUX ``joint_attention_dim``).
        vision_dim: CLIP vision hidden size.
        inner_dim: DiT width (FLUX ``num_attention_heads * attention_head_dim``).
        num_layers: DiT blocks that get a per-layer offset (double then single blocks).
        dim: the adapter's attention width.
        heads: attention heads of the adapter.
        layer_rank: rank of each per-layer offset projection.
        max_subjects: number of subject-index embeddings.
        vision_layer: which CLIP hidden state to read (-2: penultimate, as IP-Adapter Plus).
    """

    text_dim: int = 4096
    vision_dim: int = 1024
    inner_dim: int = 3072
    num_layers: int = 57
    dim: int = 768
    heads: int = 12
    layer_rank: int = 64
    max_subjects: int = 4
    vision_layer: int = -2

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SemanticOffsets:
    """DSM's output for one generation.

    Attributes:
        global_offset: (B, T, text_dim), added to the T5 embeddings (eq. 8).
        layer_offsets: (num_layers, B, T, inner_dim), one per DiT block's text-stream input.
    """

    global_offset: torch.Tensor
    layer_offsets: torch.Tensor


class DisentangledSemanticModulation(nn.Module):
    """The DSM adapter Phi: text queries attend to per-subject CLIP-vision tokens."""

    def __init__(self, config: DSMConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        if c.dim % c.heads:
            raise ValueError(f"DSM dim {c.dim} must be divisible by heads {c.heads}.")
        self.text_norm = nn.LayerNorm(c.text_dim)
        self.to_query = nn.Linear(c.text_dim, c.dim)
        self.vision_norm = nn.LayerNorm(c.vision_dim)
        self.to_key = nn.Linear(c.vision_dim, c.dim)
        self.to_value = nn.Linear(c.vision_dim, c.dim)
        self.subject_embedding = nn.Embedding(c.max_subjects, c.dim)
        self.attn_out = nn.Linear(c.dim, c.dim)
        self.to_global_offset = nn.Linear(c.dim, c.text_dim)
        # Per-layer offsets: a shared down-projection to num_layers x rank, then one up-projection
        # per block, stored as a single tensor so all blocks' offsets come from one einsum.
        self.to_layer_codes = nn.Linear(c.dim, c.num_layers * c.layer_rank)
        self.layer_up = nn.Parameter(torch.empty(c.num_layers, c.layer_rank, c.inner_dim))
        self.layer_up_bias = nn.Parameter(torch.empty(c.num_layers, c.inner_dim))
        self.reset_output_projections()

    @property
    def device(self) -> torch.device:
        return self.layer_up.device

    @property
    def dtype(self) -> torch.dtype:
        return self.layer_up.dtype

    def reset_output_projections(self) -> None:
        """Zero every output projection: the adapter then changes nothing (exact identity)."""
        with torch.no_grad():
            self.to_global_offset.weight.zero_()
            self.to_global_offset.bias.zero_()
            self.layer_up.zero_()
            self.layer_up_bias.zero_()

    def forward(self, text_embeds: torch.Tensor, vision_states: torch.Tensor,
                subject_bias: torch.Tensor | None = None) -> SemanticOffsets:
        """Compute the offsets.

        Args:
            text_embeds: (B, T, text_dim) T5 embeddings E_t.
            vision_states: (B, N, P, vision_dim) CLIP-vision hidden states of N references.
            subject_bias: optional (B or 1, T, N) additive attention bias from text token t to
                reference n (name-span binding); 0 everywhere means unbound.
        """
        b, n, p, _ = vision_states.shape
        c = self.config
        if n > c.max_subjects:
            raise ValueError(f"DSM was built for at most {c.max_subjects} subjects, got {n}.")
        query = self.to_query(self.text_norm(text_embeds))
        tokens = self.vision_norm(vision_states)
        subject = self.subject_embedding.weight[:n, None, :]  # (N, 1, dim): tags every token of ref n
        key = (self.to_key(tokens) + subject).reshape(b, n * p, c.dim)
        value = (self.to_value(tokens) + subject).reshape(b, n * p, c.dim)
        mask = None
        if subject_bias is not None:
            mask = subject_bias.to(query.dtype).repeat_interleave(p, dim=-1)[:, None]  # (B, 1, T, N*P)
        attended = F.scaled_dot_product_attention(
            _heads(query, c.heads), _heads(key, c.heads), _heads(value, c.heads), attn_mask=mask)
        hidden = self.attn_out(attended.transpose(1, 2).flatten(2))
        codes = self.to_layer_codes(hidden).unflatten(-1, (c.num_layers, c.layer_rank))
        layer_offsets = torch.einsum("btlr,lrd->lbtd", codes, self.layer_up) + self.layer_up_bias[:, None, None]
        return SemanticOffsets(self.to_global_offset(hidden), layer_offsets)


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, L, D) -> (B, heads, L, D / heads)."""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def num_parameters(config: DSMConfig) -> int:
    """Parameters of a DSM built from ``config``, from the sizes alone (nothing is allocated).

    At FLUX.1-dev size (``DSMConfig()``) this is 22,661,696: ~2.4% of a rank-512 LoRA (~0.96 B).
    """
    c = config
    linear = lambda fan_in, fan_out: fan_in * fan_out + fan_out  # noqa: E731
    return (2 * c.text_dim + linear(c.text_dim, c.dim)                    # text norm, queries
            + 2 * c.vision_dim + 2 * linear(c.vision_dim, c.dim)          # vision norm, keys, values
            + c.max_subjects * c.dim + linear(c.dim, c.dim)               # subject index, attention out
            + linear(c.dim, c.text_dim)                                   # global offset
            + linear(c.dim, c.num_layers * c.layer_rank)                  # per-layer codes
            + c.num_layers * (c.layer_rank * c.inner_dim + c.inner_dim))  # per-layer up-projections
