"""Subject binding on FlexAttention: the region bias as a ``score_mod`` over per-token ids.

The dense path (``engine.binding.region_attention_bias``) materialises an (S, S) additive bias and
hands it to SDPA as ``attn_mask``. Any mask takes SDPA off its flash kernel in every one of FLUX's
57 blocks, and at 1024^2 with two references and a pose map the bias alone is ~90 M entries. Here
the same bias is a rule over two small per-token tables (O(S * K) memory, K <= 4 subjects):

* ``owner[s]``: the subject whose identity token ``s`` carries (reference k's tokens, and with
  name binding the prompt tokens that spell k's name), ``K`` for none;
* ``outside[s, k]``: ``s`` is a latent token outside subject k's region (column ``K``: False).

A query/key pair is penalised by ``-strength * BIAS_PER_STRENGTH`` when either side is a token
of subject k and the other a latent token outside k's region: exactly the dense bias, built from
the same regions. ``torch.nn.attention.flex_attention`` applies it inside the fused kernel under
``torch.compile`` (GPU); eagerly (CPU) it materialises the scores, which is slow but exact, and
is what the parity tests use. The penalty is a tensor, so a new strength never recompiles.

:class:`BindingAttnProcessor` is diffusers' ``FluxAttnProcessor`` with one extra keyword,
``binding``; without it (or for a block the binding skips) it *is* the stock processor, so LoRA,
fused projections, attention backends and ``compile_repeated_blocks`` keep working.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.models.transformers.transformer_flux import (
    FluxAttnProcessor,
    _get_qkv_projections,
    apply_rotary_emb,
)
from torch.nn.attention.flex_attention import flex_attention


@dataclass(frozen=True)
class RegionBinding:
    """The binding of one generation as FlexAttention inputs (see the module docstring).

    Args:
        owner: (S,) int32 over the joint sequence ``[text | image stream]``: the subject index a
            token carries identity of, or ``num_subjects`` for none.
        outside: (S, num_subjects + 1) bool: token s is a latent token outside subject k's region.
        penalty: 0-d float32 tensor, ``-strength * BIAS_PER_STRENGTH`` (a tensor: changing the
            strength changes no compiled graph).
        layers: DiT block indices (double blocks first, then single blocks) that bind; None = all.
    """

    owner: torch.Tensor
    outside: torch.Tensor
    penalty: torch.Tensor
    layers: tuple[int, ...] | None = None

    @property
    def num_tokens(self) -> int:
        return self.owner.shape[0]

    def applies_to(self, layer: int | None) -> bool:
        return self.layers is None or layer is None or layer in self.layers

    def to(self, device: torch.device | str) -> RegionBinding:
        return RegionBinding(self.owner.to(device), self.outside.to(device), self.penalty.to(device), self.layers)

    def score_mod(self):
        """``score_mod(score, b, h, q, kv)`` for ``flex_attention``: adds the penalty to blocked pairs."""
        owner, outside, penalty = self.owner, self.outside, self.penalty

        def region_bias(score, batch, head, q_idx, kv_idx):
            blocked = outside[q_idx, owner[kv_idx]] | outside[kv_idx, owner[q_idx]]
            return torch.where(blocked, score + penalty.to(score.dtype), score)

        return region_bias

    def dense_bias(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(1, 1, S, S) the same bias materialised (tests and the dense reference only)."""
        blocked = self.outside[:, self.owner] | self.outside[:, self.owner].T
        return torch.where(blocked, self.penalty, torch.zeros((), device=self.penalty.device)).to(dtype)[None, None]


class BindingAttnProcessor(FluxAttnProcessor):
    """``FluxAttnProcessor`` (diffusers 0.42) plus subject binding through FlexAttention.

    Args:
        layer: this block's index in stream order (double blocks, then single blocks), so a
            :class:`RegionBinding` can bind in some blocks only.

    The projection, QK-norm and RoPE code is diffusers' (same helpers); only the attention call
    differs, and only when a ``binding`` applies to this block.
    """

    def __init__(self, layer: int | None = None) -> None:
        super().__init__()
        self.layer = layer
        self._compiled_flex = None

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, image_rotary_emb: torch.Tensor | None = None,
                 binding: RegionBinding | None = None) -> torch.Tensor:
        # Under compile_repeated_blocks all blocks of a type share one graph; a per-block binding
        # (``layers``) compares `self.layer`, which specialises that graph per block (experiments only).
        if binding is None or (binding.layers is not None and not binding.applies_to(self.layer)):
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
        if attention_mask is not None:
            raise ValueError("Pass either a dense attention_mask or a FlexAttention binding, not both.")
        query, key, value, encoder_query, encoder_key, encoder_value = _get_qkv_projections(
            attn, hidden_states, encoder_hidden_states)
        query = attn.norm_q(query.unflatten(-1, (-1, attn.head_dim)))
        key = attn.norm_k(key.unflatten(-1, (-1, attn.head_dim)))
        value = value.unflatten(-1, (-1, attn.head_dim))
        if attn.added_kv_proj_dim is not None:
            encoder_query = attn.norm_added_q(encoder_query.unflatten(-1, (-1, attn.head_dim)))
            encoder_key = attn.norm_added_k(encoder_key.unflatten(-1, (-1, attn.head_dim)))
            encoder_value = encoder_value.unflatten(-1, (-1, attn.head_dim))
            query = torch.cat([encoder_query, query], dim=1)
            key = torch.cat([encoder_key, key], dim=1)
            value = torch.cat([encoder_value, value], dim=1)
        if image_rotary_emb is not None:
            query = apply_rotary_emb(query, image_rotary_emb, sequence_dim=1)
            key = apply_rotary_emb(key, image_rotary_emb, sequence_dim=1)
        if query.shape[1] != binding.num_tokens:
            raise ValueError(f"The binding covers {binding.num_tokens} tokens, the attention {query.shape[1]}.")
        out = self._flex(*(x.transpose(1, 2) for x in (query, key, value)), score_mod=binding.score_mod())
        hidden_states = out.transpose(1, 2).flatten(2, 3).to(query.dtype)
        if encoder_hidden_states is None:
            return hidden_states
        encoder_hidden_states, hidden_states = hidden_states.split_with_sizes(
            [encoder_hidden_states.shape[1], hidden_states.shape[1] - encoder_hidden_states.shape[1]], dim=1)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states.contiguous()))
        encoder_hidden_states = attn.to_add_out(encoder_hidden_states.contiguous())
        return hidden_states, encoder_hidden_states

    def _flex(self, query, key, value, score_mod):
        """Fused under ``torch.compile`` (the whole block is being traced: call flex directly); on
        an eager GPU a compiled ``flex_attention`` (eager flex materialises S x S scores per
        head); on the CPU the eager, exact implementation."""
        if torch.compiler.is_compiling() or query.device.type != "cuda":
            return flex_attention(query, key, value, score_mod=score_mod)
        if self._compiled_flex is None:
            self._compiled_flex = torch.compile(flex_attention, dynamic=False)
        return self._compiled_flex(query, key, value, score_mod=score_mod)


def install_binding_processors(transformer: torch.nn.Module) -> None:
    """Give every attention of a FLUX transformer a :class:`BindingAttnProcessor` (idempotent).

    Call it before ``compile_repeated_blocks``. Without a ``binding`` the processors run the
    stock code, so installing them changes no output.
    """
    if uses_binding_processors(transformer):
        return
    blocks = [*transformer.transformer_blocks, *transformer.single_transformer_blocks]
    for index, block in enumerate(blocks):
        block.attn.set_processor(BindingAttnProcessor(layer=index))


def uses_binding_processors(transformer: torch.nn.Module) -> bool:
    blocks = [*transformer.transformer_blocks, *transformer.single_transformer_blocks]
    return all(isinstance(block.attn.processor, BindingAttnProcessor) for block in blocks)
