"""The cost model against a hand computation, and its CLI."""

import json

import pytest

from engine.cost import FLUX_DEV, DiTDims, Tokens, compare, count_tokens, lora_parameters, main, step_flops
from engine.errors import EngineError


def test_token_counts_by_hand():
    # 1024 px / 16 px per packed token = 64 -> 64 * 64 = 4096 latent tokens; a 320 px reference:
    # 20 * 20 = 400; a full pose map overlays the latent: 4096; at scale 2: 32 * 32 = 1024.
    tokens = count_tokens(1024, 1024, [(320, 320)] * 2, pose_scale=1)
    assert tokens == Tokens(text=512, latent=4096, references=(400, 400), pose=4096)
    assert (tokens.image, tokens.total) == (8992, 9504)
    assert count_tokens(1024, 1024, [(320, 320)] * 2, pose_scale=2).total == 512 + 4096 + 800 + 1024
    assert count_tokens(768, 1024, [(512, 384)], pose_scale=0) == Tokens(512, 48 * 64, (32 * 24,), 0)


def test_flops_by_hand_for_1024_two_refs_and_a_full_pose():
    # Per block and token: 12 d^2 multiply-adds of linear layers = 24 d^2 FLOPs; attention 4 d N^2.
    # d^2 = 3072^2 = 9_437_184; 57 blocks * 24 = 1368; 1368 * 9_437_184 = 12_910_067_712 per token.
    flux = step_flops(count_tokens(1024, 1024, pose_scale=0))
    assert flux.linear == 12_910_067_712 * 4608 == 59_489_592_016_896
    # 57 * 4 * 3072 = 700_416; 4608^2 = 21_233_664.
    assert flux.attention == 700_416 * 21_233_664 == 14_872_398_004_224
    # Embedders: 2 * 3072 * (4096 * 512 text in + 2 * 64 * 4096 latent in/out) = 16_106_127_360.
    assert flux.embed == 16_106_127_360 and flux.lora == 0

    astra = step_flops(count_tokens(1024, 1024, [(320, 320)] * 2, pose_scale=1))
    assert astra.linear == 12_910_067_712 * 9504
    assert astra.attention == 700_416 * 9504 ** 2 == 700_416 * 90_326_016
    assert astra.embed == 2 * 3072 * (4096 * 512 + 2 * 64 * 8992)
    # (122.70 + 63.27 + 0.02) / (59.49 + 14.87 + 0.016) TFLOPs = 2.5005
    result = compare(1024, 1024, refs=2, ref_size=(320, 320), pose_scale=1)
    assert result["ratio"]["flops"] == pytest.approx(185_983_026_855_936 / 74_378_096_148_480)
    assert result["ratio"]["flops"] == pytest.approx(2.5005, abs=1e-4)
    assert result["ratio"]["tokens"] == pytest.approx(9504 / 4608)
    assert result["ratio"]["attention"] == pytest.approx((9504 / 4608) ** 2)


def test_compact_pose_and_no_conditions():
    half = compare(1024, 1024, refs=2, ref_size=(320, 320), pose_scale=2)["ratio"]["flops"]
    full = compare(1024, 1024, refs=2, ref_size=(320, 320), pose_scale=1)["ratio"]["flops"]
    assert 1 < half < full
    assert compare(512, 768, refs=0, pose_scale=0)["ratio"]["flops"] == 1.0


def test_unfused_lora_cost_by_hand():
    # rank r: per token 2 r (8 d) in each double block (4 d->d projections per stream) and
    # 2 r (12 d) in each single block (q, k, v: 3 * 2 d; proj_out 5d -> d: 6 d).
    tokens = Tokens(text=0, latent=10)
    flops = step_flops(tokens, DiTDims(double_blocks=1, single_blocks=1, hidden=8, text_tokens=0), lora_rank=2)
    assert flops.lora == 2 * 2 * 8 * 10 * (8 + 12)
    assert step_flops(tokens, FLUX_DEV, lora_rank=512).lora > 0


def test_lora_parameter_count_matches_peft_and_flux_size():
    from engine.lora import add_lora, count_lora_parameters
    from tests.helpers.dit import DIM, tiny_transformer

    model = tiny_transformer(num_layers=2, num_single_layers=3)
    add_lora(model, rank=4)
    assert count_lora_parameters(model) == lora_parameters(4, DiTDims(double_blocks=2, single_blocks=3, hidden=DIM))
    # FLUX.1-dev, rank 512: 512 * 3072 * (16 * 19 + 12 * 38) = 512 * 3072 * 760.
    assert lora_parameters(512) == 1_195_376_640


def test_bad_sizes_raise():
    with pytest.raises(EngineError, match="multiple of 16"):
        count_tokens(1000, 1024)
    with pytest.raises(EngineError, match="multiple of 32"):
        count_tokens(1040, 1024, pose_scale=2)
    with pytest.raises(EngineError, match="pose scale"):
        count_tokens(1024, 1024, pose_scale=-1)


def test_cli_table_and_json(capsys):
    argv = ["--height", "1024", "--width", "1024", "--refs", "2", "--ref-size", "320", "--pose-scale", "2"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "ASTRA / FLUX t2i: 1.51x FLOPs per step" in table and "6432" in table
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["astra"]["tokens"]["total"] == 6432 and data["flux_t2i"]["tokens"]["total"] == 4608
    assert main(["--height", "1000"]) == 2
    assert "multiple of 16" in capsys.readouterr().err
    assert main(["--ref-size", "320x240", "--refs", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["astra"]["tokens"]["references"] == [20 * 15]


def test_memory_plan_per_mode_from_real_configs():
    """Counted on the meta device: FLUX.1-dev 11.90 B, Union-Pro-2.0 ControlNet 2.14 B (6 double blocks),
    UNO's rank-512 LoRA 1.195 B once split to peft (free once fused)."""
    from engine.cost import memory_plan, parameter_counts

    counts = parameter_counts()
    assert counts["transformer"] == 11_901_408_320
    assert counts["ControlNet (Union-Pro-2.0)"] == 2_140_876_800
    public = memory_plan("public", counts)
    assert public["resident_gb"] == pytest.approx(2 * sum(counts[k] for k in (
        "transformer", "T5-XXL", "CLIP-L text", "VAE", "ControlNet (Union-Pro-2.0)")) / 1e9)
    assert public["offload_model_peak_gb"] == pytest.approx(2 * (counts["transformer"] +
                                                                 counts["ControlNet (Union-Pro-2.0)"]) / 1e9)
    unfused = memory_plan("public", counts, fused=False)
    assert unfused["resident_gb"] - public["resident_gb"] == pytest.approx(2 * 1_195_376_640 / 1e9)
    base = memory_plan("base", counts, controlnet=False)
    assert "ControlNet (Union-Pro-2.0)" not in base["components_gb"] and base["resident_gb"] < public["resident_gb"]
    assert "DSM" in memory_plan("astra", counts)["components_gb"]
