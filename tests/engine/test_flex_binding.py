"""Binding on FlexAttention (``engine.attention``) against its dense reference (``region_attention_bias``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.attention import BindingAttnProcessor, install_binding_processors, uses_binding_processors
from engine.binding import region_attention_bias, region_binding
from engine.europe import StreamLayout
from engine.tiny import random_forward_inputs
from engine.transformer import astra_forward
from tests.helpers.dit import CHANNELS, TEXT_DIM, tiny_transformer

TEXT = 8
LAYOUT = StreamLayout((4, 4), ((2, 2), (1, 3)), (4, 4))


def _regions() -> dict[int, np.ndarray]:
    left = np.zeros((4, 4), dtype=bool)
    left[:, :2] = True
    middle = np.zeros((4, 4), dtype=bool)
    middle[1:3, 1:4] = True  # overlaps subject 0's region
    return {0: left, 1: middle, 3: ~left}  # subject 3 has no reference: ignored by both paths


def _names() -> np.ndarray:
    names = np.zeros((TEXT, 4), dtype=bool)
    names[2, 0] = names[5, 1] = names[6, 1] = True
    names[6, 0] = True  # a token naming two subjects binds to the first
    return names


def _inputs(seed: int = 0) -> dict:
    return random_forward_inputs(LAYOUT, channels=CHANNELS, text_tokens=TEXT, text_dim=TEXT_DIM, seed=seed)


@pytest.mark.parametrize("names", [None, "names"])
def test_flex_ids_encode_exactly_the_dense_bias(names):
    name_mask = _names() if names else None
    dense = region_attention_bias(LAYOUT, TEXT, _regions(), 0.7, name_mask=name_mask)
    binding = region_binding(LAYOUT, TEXT, _regions(), 0.7, name_mask=name_mask)
    assert binding.owner.shape == (TEXT + LAYOUT.num_tokens,) and binding.outside.shape[1] == 3
    assert torch.equal(binding.dense_bias(), dense)
    assert (dense != 0).any()


def test_name_binding_adds_the_name_tokens_to_their_subject():
    plain = region_attention_bias(LAYOUT, TEXT, _regions(), 1.0)[0, 0]
    named = region_attention_bias(LAYOUT, TEXT, _regions(), 1.0, name_mask=_names())[0, 0]
    latent = slice(TEXT, TEXT + LAYOUT.num_latent)
    assert (plain[:TEXT] == 0).all()
    outside0 = TEXT + np.flatnonzero(~_regions()[0].reshape(-1))
    assert (named[2, outside0] < 0).all() and (named[outside0, 2] < 0).all()   # "Mia" kept off outside her region
    assert (named[6, outside0] < 0).all()                                       # first of two names wins
    assert (named[[0, 1, 3, 4, 7], latent] == 0).all()                          # unnamed tokens stay free


@pytest.mark.parametrize("names", [None, "names"])
def test_flex_binding_equals_dense_binding_through_the_dit(names):
    """Two double and two single blocks, fp32 on the CPU: flex and dense agree to 1e-5 and both
    differ from unbound attention (so the comparison is not vacuous)."""
    transformer = tiny_transformer(num_layers=2, num_single_layers=2)
    name_mask = _names() if names else None
    x = _inputs()
    with torch.no_grad():
        unbound = astra_forward(transformer, **x)
        dense = astra_forward(transformer, attention_bias=region_attention_bias(
            LAYOUT, TEXT, _regions(), 0.8, name_mask=name_mask), **x)
        flex = astra_forward(transformer, binding=region_binding(LAYOUT, TEXT, _regions(), 0.8,
                                                                 name_mask=name_mask), **x)
    assert (dense - flex).abs().max() <= 1e-5
    assert (dense - unbound).abs().max() > 1e-3


def test_binding_processors_without_a_binding_are_the_stock_processor():
    transformer = tiny_transformer(num_layers=1, num_single_layers=1)
    x = _inputs()
    with torch.no_grad():
        stock = astra_forward(transformer, **x)
        install_binding_processors(transformer)
        install_binding_processors(transformer)  # idempotent
        ours = astra_forward(transformer, **x)
    assert uses_binding_processors(transformer)
    assert [block.attn.processor.layer for block in transformer.transformer_blocks] == [0]
    assert [block.attn.processor.layer for block in transformer.single_transformer_blocks] == [1]
    assert torch.equal(stock, ours)


def test_binding_only_some_blocks():
    transformer = tiny_transformer(num_layers=2, num_single_layers=2)
    x = _inputs()

    def run(layers):
        with torch.no_grad():
            return astra_forward(transformer, binding=region_binding(LAYOUT, TEXT, _regions(), 1.0, layers=layers),
                                 **x)

    every, listed, first = run(None), run(range(4)), run([0])
    assert torch.equal(every, listed)
    assert (every - first).abs().max() > 1e-4
    with torch.no_grad():
        unbound = astra_forward(transformer, **x)
    assert (first - unbound).abs().max() > 1e-4


def test_binding_and_a_dense_mask_together_are_refused():
    transformer = tiny_transformer(num_layers=1, num_single_layers=0)
    x = _inputs()
    with pytest.raises(ValueError, match="not both"):
        astra_forward(transformer, attention_bias=region_attention_bias(LAYOUT, TEXT, _regions(), 1.0),
                      binding=region_binding(LAYOUT, TEXT, _regions(), 1.0), **x)


def test_binding_is_off_at_strength_zero():
    assert region_binding(LAYOUT, TEXT, _regions(), 0.0) is None
    assert region_binding(LAYOUT, TEXT, {}, 1.0) is None


@pytest.mark.slow
def test_compiled_blocks_take_new_bindings_without_a_graph_break_or_a_recompile():
    """``compile_repeated_blocks(fullgraph=True)`` traces the flex binding (a graph break would
    raise); new strengths and regions at the same size reuse the two block graphs."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    transformer = tiny_transformer(num_layers=2, num_single_layers=3)  # blocks share their type's graph
    install_binding_processors(transformer)
    eager = {}
    x = _inputs()
    cases = [(1.0, 2), (0.4, 1), (2.0, 3)]
    with torch.no_grad():
        for strength, cols in cases:
            region = np.zeros((4, 4), dtype=bool)
            region[:, :cols] = True
            eager[strength] = astra_forward(transformer, binding=region_binding(
                LAYOUT, TEXT, {0: region, 1: ~region}, strength), **x)
        counters.clear()  # eager flex compiles its own wrapper once: count the compiled blocks only
        transformer.compile_repeated_blocks(backend="aot_eager", fullgraph=True)
        graphs = []
        for strength, cols in cases:
            region = np.zeros((4, 4), dtype=bool)
            region[:, :cols] = True
            out = astra_forward(transformer, binding=region_binding(LAYOUT, TEXT, {0: region, 1: ~region}, strength),
                                **x)
            torch.testing.assert_close(out, eager[strength], rtol=0, atol=1e-5)
            graphs.append(counters["stats"]["unique_graphs"])
    # The first request compiles each block type (diffusers' first single block gets its input with
    # other strides: one more graph); the next requests, new strength and regions, compile nothing.
    assert graphs[0] <= 3 and graphs == [graphs[0]] * len(cases)
    assert not counters["graph_break"]
    torch._dynamo.reset()


def test_processor_rejects_a_binding_of_another_size():
    transformer = tiny_transformer(num_layers=1, num_single_layers=0)
    other = StreamLayout((4, 4), ((2, 2),))
    with pytest.raises(ValueError, match="covers"):
        astra_forward(transformer, binding=region_binding(other, TEXT, _regions(), 1.0), **_inputs())
    assert isinstance(transformer.transformer_blocks[0].attn.processor, BindingAttnProcessor)
