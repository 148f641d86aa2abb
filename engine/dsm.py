"""DSM: Disentangled Semantic Modulation (paper section 3.2, eq. 7-8).

Identity is re-expressed as an offset on the text condition instead of being left to the DiT's
self-attention: ``dE = Phi(F_v, E_t)`` and ``E' = E_t + dE``. Phi is a small cross-attention
adapter whose queries are the T5 text embeddings and whose keys/values are CLIP-vision hidden
states of the references (patch tokens of one or more intermediate layers, not the pooled
vector), each reference tagged with a learned subject-index embedding so several subjects stay
apart, and each layer with a learned layer embedding when several are read.

It modulates hierarchically: a global offset on the T5 embeddings (before FLUX's
``context_embedder``) and a finer low-rank offset per DiT block on the text stream, applied by
``engine.transformer.modulate_text_stream``. Every output projection starts at zero, so an
untrained DSM is exactly the identity. By default the offsets depend on the text and the
references, not on the timestep: a pipeline computes them once per generation. With
``timestep_offsets`` the per-layer offsets also depend on the timestep (the paper's "dynamic
identity reinforcement over the denoising process"): the attention runs once, and
:meth:`DisentangledSemanticModulation.layer_offsets_at` re-derives the layer offsets per step.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import EngineError


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
        vision_layers: which CLIP hidden states to read, in order (paper: "intermediate layers",
            plural, without indices). Their patch tokens are concatenated, each layer tagged with
            a learned layer embedding. The default (-2,): the penultimate layer, as IP-Adapter Plus.
        vision_layer: legacy single-layer field of adapters written before ``vision_layers``;
            when given it becomes ``vision_layers = (vision_layer,)``. Never written.
        timestep_offsets: per-layer offsets that depend on the denoising timestep ("dynamic
            identity reinforcement over the denoising process"): a small MLP of the timestep
            gains each layer's low-rank codes, starting at gain 1 (zero-initialised). Off by default.
    """

    text_dim: int = 4096
    vision_dim: int = 1024
    inner_dim: int = 3072
    num_layers: int = 57
    dim: int = 768
    heads: int = 12
    layer_rank: int = 64
    max_subjects: int = 4
    vision_layers: tuple[int, ...] = (-2,)
    vision_layer: int | None = None
    timestep_offsets: bool = False

    def __post_init__(self) -> None:
        if self.vision_layer is not None:  # an adapter saved before multi-layer features
            self.vision_layers = (int(self.vision_layer),)
            self.vision_layer = None
        self.vision_layers = tuple(int(layer) for layer in self.vision_layers)
        if not self.vision_layers or len(set(self.vision_layers)) != len(self.vision_layers):
            raise ValueError(f"vision_layers must name one or more distinct layers, got {self.vision_layers}.")

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("vision_layer")
        data["vision_layers"] = list(self.vision_layers)
        return data


@dataclass
class SemanticOffsets:
    """DSM's output for one generation.

    Attributes:
        global_offset: (B, T, text_dim), added to the T5 embeddings (eq. 8).
        layer_offsets: (num_layers, B, T, inner_dim), one per DiT block's text-stream input (for
            a timestep-dependent DSM: at the timestep given, or at gain 1 without one).
        codes: (B, T, num_layers, layer_rank) low-rank codes the layer offsets come from, kept
            so a timestep-dependent DSM can re-derive them per step without re-attending.
    """

    global_offset: torch.Tensor
    layer_offsets: torch.Tensor
    codes: torch.Tensor | None = None


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
        # Only built when used, so single-layer, timestep-free adapters keep their old state dict.
        self.layer_embedding = nn.Embedding(len(c.vision_layers), c.dim) if len(c.vision_layers) > 1 else None
        if c.timestep_offsets:
            self.time_mlp = nn.Sequential(nn.Linear(TIMESTEP_CHANNELS, c.dim), nn.SiLU(),
                                          nn.Linear(c.dim, c.num_layers * c.layer_rank))
        else:
            self.time_mlp = None
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
            if self.time_mlp is not None:  # gain 1 at every timestep until trained
                self.time_mlp[-1].weight.zero_()
                self.time_mlp[-1].bias.zero_()

    def forward(self, text_embeds: torch.Tensor, vision_states: torch.Tensor,
                subject_bias: torch.Tensor | None = None, timestep: torch.Tensor | None = None) -> SemanticOffsets:
        """Compute the offsets.

        Args:
            text_embeds: (B, T, text_dim) T5 embeddings E_t.
            vision_states: (B, N, P, vision_dim) CLIP-vision hidden states of N references; with
                several ``vision_layers`` the layers' tokens are concatenated layer by layer
                (P = layers x tokens per layer, as :func:`engine.conditioning.vision_states` gives).
            subject_bias: optional (B or 1, T, N) additive attention bias from text token t to
                reference n (name-span binding); 0 everywhere means unbound.
            timestep: optional (B,) or scalar flow-matching time in [0, 1] (diffusers' sigma);
                only a ``timestep_offsets`` DSM reads it.
        """
        b, n, p, _ = vision_states.shape
        c = self.config
        if n > c.max_subjects:
            raise ValueError(f"DSM was built for at most {c.max_subjects} subjects, got {n}.")
        query = self.to_query(self.text_norm(text_embeds))
        tokens = self.vision_norm(vision_states)
        subject = self.subject_embedding.weight[:n, None, :]  # (N, 1, dim): tags every token of ref n
        if self.layer_embedding is not None:  # (N, P, dim): also tags which CLIP layer a token is from
            layers = len(c.vision_layers)
            if p % layers:
                raise ValueError(f"{p} vision tokens per reference cannot be split into {layers} layers.")
            subject = subject + self.layer_embedding.weight.repeat_interleave(p // layers, dim=0)[None]
        key = (self.to_key(tokens) + subject).reshape(b, n * p, c.dim)
        value = (self.to_value(tokens) + subject).reshape(b, n * p, c.dim)
        mask = None
        if subject_bias is not None:
            mask = subject_bias.to(query.dtype).repeat_interleave(p, dim=-1)[:, None]  # (B, 1, T, N*P)
        attended = F.scaled_dot_product_attention(
            _heads(query, c.heads), _heads(key, c.heads), _heads(value, c.heads), attn_mask=mask)
        hidden = self.attn_out(attended.transpose(1, 2).flatten(2))
        codes = self.to_layer_codes(hidden).unflatten(-1, (c.num_layers, c.layer_rank))
        return SemanticOffsets(self.to_global_offset(hidden), self._layer_offsets(codes, timestep), codes)

    def layer_offsets_at(self, offsets: SemanticOffsets, timestep: torch.Tensor | None) -> torch.Tensor:
        """(num_layers, B, T, inner_dim) per-layer offsets at ``timestep`` (B,) or scalar in [0, 1].

        A timestep-free DSM (the default) ignores ``timestep``. A ``timestep_offsets`` DSM scales
        each layer's codes by ``1 + time_mlp(t)``; without a timestep the gain is 1.
        """
        return self._layer_offsets(offsets.codes, timestep)

    def _layer_offsets(self, codes: torch.Tensor, timestep: torch.Tensor | None) -> torch.Tensor:
        if self.time_mlp is not None and timestep is not None:
            t = torch.as_tensor(timestep, device=codes.device, dtype=torch.float32).reshape(-1)
            gain = self.time_mlp(timestep_features(t).to(codes.dtype))  # (B or 1, L * r)
            codes = codes * (1 + gain.unflatten(-1, (self.config.num_layers, self.config.layer_rank))[:, None])
        return torch.einsum("btlr,lrd->lbtd", codes, self.layer_up) + self.layer_up_bias[:, None, None]


TIMESTEP_CHANNELS = 256  # FLUX's own timestep projection width (diffusers ``Timesteps(num_channels=256)``)


def timestep_features(timestep: torch.Tensor) -> torch.Tensor:
    """(B, 256) sinusoidal features of flow-matching times in [0, 1], scaled by 1000 as FLUX's
    ``time_text_embed`` does (cos then sin, max period 10,000)."""
    half = TIMESTEP_CHANNELS // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=timestep.device) / half)
    angles = timestep.float()[:, None] * 1000.0 * freqs[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


def check_dsm_fits(config: DSMConfig, transformer: nn.Module, image_encoder: nn.Module | None = None, *,
                   trained_on: str | None = None) -> None:
    """Raise :class:`EngineError` if a DSM of ``config`` does not fit the FLUX ``transformer``
    (T5 width, DiT width, block count) or the CLIP ``image_encoder`` (hidden size), so a DSM for
    another base model or encoder is refused at load, not mid-generation.

    Args:
        trained_on: the base model the DSM was trained with, named in the error when known.
    """
    dit = transformer.config
    expected = {"text_dim": dit.joint_attention_dim, "inner_dim": dit.num_attention_heads * dit.attention_head_dim,
                "num_layers": dit.num_layers + dit.num_single_layers}
    if image_encoder is not None:
        expected["vision_dim"] = image_encoder.config.hidden_size
    wrong = [f"{k} {getattr(config, k)} (needs {v})" for k, v in expected.items() if getattr(config, k) != v]
    if wrong:
        raise EngineError(f"The DSM adapter does not fit this base model / vision encoder: {', '.join(wrong)}; "
                          f"use the base model{f' ({trained_on})' if trained_on else ''} and CLIP vision encoder "
                          "it was trained with.")


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, L, D) -> (B, heads, L, D / heads)."""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def num_parameters(config: DSMConfig) -> int:
    """Parameters of a DSM built from ``config``, from the sizes alone (nothing is allocated).

    At FLUX.1-dev size (``DSMConfig()``) this is 22,661,696: ~2.4% of a rank-512 LoRA (~0.96 B).
    Each extra vision layer adds a ``dim``-wide layer embedding; ``timestep_offsets`` adds the
    timestep MLP (256 -> dim -> num_layers x layer_rank).
    """
    c = config
    linear = lambda fan_in, fan_out: fan_in * fan_out + fan_out  # noqa: E731
    return (2 * c.text_dim + linear(c.text_dim, c.dim)                    # text norm, queries
            + 2 * c.vision_dim + 2 * linear(c.vision_dim, c.dim)          # vision norm, keys, values
            + c.max_subjects * c.dim + linear(c.dim, c.dim)               # subject index, attention out
            + linear(c.dim, c.text_dim)                                   # global offset
            + linear(c.dim, c.num_layers * c.layer_rank)                  # per-layer codes
            + c.num_layers * (c.layer_rank * c.inner_dim + c.inner_dim)   # per-layer up-projections
            + (len(c.vision_layers) * c.dim if len(c.vision_layers) > 1 else 0)  # layer embedding
            + (linear(TIMESTEP_CHANNELS, c.dim) + linear(c.dim, c.num_layers * c.layer_rank)
               if c.timestep_offsets else 0))                             # timestep MLP
