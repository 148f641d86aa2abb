"""ASTRA adapter folders: astra_config.json + transformer_lora.safetensors + dsm.safetensors."""

import json

import pytest
import torch

import engine.checkpoint as checkpoint
from engine.checkpoint import (
    CONFIG_NAME,
    DSM_NAME,
    FORMAT_VERSION,
    LORA_NAME,
    AstraConfig,
    build_dsm,
    check_fits,
    load_adapter,
    save_adapter,
    write_adapter,
)
from engine.conditioning import ReferenceSizes
from engine.dsm import DisentangledSemanticModulation, DSMConfig
from engine.errors import EngineError
from engine.lora import add_lora, apply_lora_state, lora_state_dict
from engine.settings import AstraSettings
from tests.helpers.dit import DIM, TEXT_DIM, dit_inputs, randomise_lora, run, tiny_transformer

LAYERS = dict(num_layers=2, num_single_layers=2)
TINY_DSM = DSMConfig(text_dim=TEXT_DIM, vision_dim=24, inner_dim=DIM, num_layers=4, dim=16, heads=2, layer_rank=4)
SETTINGS = AstraSettings(references=ReferenceSizes(single=64, multi=32), pose_scale=2, max_sequence_length=32)


def _dsm(seed=3):
    torch.manual_seed(seed)
    dsm = DisentangledSemanticModulation(TINY_DSM)
    with torch.no_grad():
        dsm.layer_up.normal_()  # not the zero init: the round trip must carry real values
    return dsm


@pytest.fixture
def parts():
    transformer = tiny_transformer(**LAYERS)
    add_lora(transformer, rank=4)
    randomise_lora(transformer)
    return transformer, _dsm()


def _states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_save_load_round_trip(parts, tmp_path):
    transformer, dsm = parts
    folder = save_adapter(tmp_path / "adapter", AstraConfig(settings=SETTINGS, resolutions=[512, 1024],
                                                            source="unit test"), transformer, dsm)
    assert sorted(p.name for p in folder.iterdir()) == sorted([CONFIG_NAME, LORA_NAME, DSM_NAME])
    raw = json.loads((folder / CONFIG_NAME).read_text())
    assert raw["format_version"] == FORMAT_VERSION and {"torch", "diffusers", "peft"} <= raw["versions"].keys()
    assert raw["lora"]["rank"] == 4 and raw["dsm"]["num_layers"] == 4

    config, lora_state, dsm_state = load_adapter(folder)
    assert config.lora.rank == 4 and config.dsm == TINY_DSM and config.settings == SETTINGS
    assert config.resolutions == [512, 1024] and config.source == "unit test"
    assert _states_equal(lora_state, lora_state_dict(transformer))
    assert _states_equal(dsm_state, dsm.state_dict())

    # The loaded parts rebuild the same model: same DiT output, same DSM weights.
    fresh = tiny_transformer(**LAYERS)
    check_fits(config, fresh)
    apply_lora_state(fresh, config.lora, lora_state)
    inputs = dit_inputs()
    assert torch.equal(run(fresh, inputs), run(transformer, inputs))
    rebuilt = build_dsm(config, dsm_state, torch.bfloat16)
    assert rebuilt.dtype == torch.bfloat16 and torch.equal(rebuilt.layer_up.float(), dsm.layer_up.bfloat16().float())


def test_lora_only_and_dsm_only_adapters(parts, tmp_path):
    transformer, dsm = parts
    lora_only = save_adapter(tmp_path / "lora-only", AstraConfig(), transformer, None)
    config, lora_state, dsm_state = load_adapter(lora_only)
    assert config.dsm is None and dsm_state == {} and lora_state and not (lora_only / DSM_NAME).exists()
    assert build_dsm(config, dsm_state) is None
    dsm_only = save_adapter(tmp_path / "dsm-only", AstraConfig(), None, dsm)
    config, lora_state, dsm_state = load_adapter(dsm_only)
    assert config.lora is None and lora_state == {} and dsm_state


def test_config_ignores_unknown_fields_and_refuses_newer_formats():
    data = AstraConfig(settings=SETTINGS, dsm=TINY_DSM).to_dict()
    data["settings"]["added_later"] = 1
    data["dsm"]["added_later"] = 1
    assert AstraConfig.from_dict(data).settings == SETTINGS
    data["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(EngineError, match="update ASTRA Studio"):
        AstraConfig.from_dict(data)


def test_writing_is_all_or_nothing(parts, tmp_path, monkeypatch):
    transformer, dsm = parts
    target = save_adapter(tmp_path / "adapter", AstraConfig(source="first"), transformer, dsm)
    with pytest.raises(EngineError, match="already exists"):
        save_adapter(target, AstraConfig(), transformer, dsm)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    with pytest.raises(OSError):
        save_adapter(target, AstraConfig(source="second"), transformer, dsm, overwrite=True)
    assert load_adapter(target)[0].source == "first"  # the old adapter is intact
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no staging folder left behind
    with pytest.raises(OSError):
        save_adapter(tmp_path / "new", AstraConfig(), transformer, dsm)
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    save_adapter(target, AstraConfig(source="second"), transformer, dsm, overwrite=True)
    assert load_adapter(target)[0].source == "second"


def test_weights_must_match_the_config(tmp_path):
    with pytest.raises(ValueError, match="exactly when"):
        write_adapter(tmp_path / "x", AstraConfig(dsm=None), None, None)  # config promises a LoRA


def test_broken_adapters_raise_engine_errors(parts, tmp_path):
    transformer, dsm = parts
    folder = save_adapter(tmp_path / "adapter", AstraConfig(), transformer, dsm)
    (folder / DSM_NAME).unlink()
    with pytest.raises(EngineError, match="lacks dsm.safetensors"):
        load_adapter(folder)
    (folder / DSM_NAME).write_bytes(b"\x00" * 16)
    with pytest.raises(EngineError, match="not a readable safetensors"):
        load_adapter(folder)
    (folder / CONFIG_NAME).write_text("{not json")
    with pytest.raises(EngineError, match="damaged"):
        load_adapter(folder)

    uno = tmp_path / "uno"
    uno.mkdir()
    (uno / "dit_lora.safetensors").write_bytes(b"")
    with pytest.raises(EngineError, match="uno_convert"):
        load_adapter(uno)
    with pytest.raises(EngineError, match="neither a folder nor a hub repo"):
        load_adapter(tmp_path / "no" / "such" / "folder")
    # A hub id that is not in the cache, without network: a clear error, not a traceback.
    with pytest.raises(EngineError, match="adapter from 'astra-test/not-cached': it is not in the local cache"):
        load_adapter("astra-test/not-cached", local_files_only=True)


def test_dsm_of_another_size_is_refused(tmp_path):
    config = AstraConfig(dsm=TINY_DSM)
    with pytest.raises(EngineError, match="num_layers 4 \\(needs 3\\).* base model \\(black-forest-labs/FLUX"):
        check_fits(config, tiny_transformer(num_layers=2, num_single_layers=1))
    other = DisentangledSemanticModulation(DSMConfig(**{**TINY_DSM.to_dict(), "layer_rank": 2}))
    with pytest.raises(EngineError, match="does not match the DSM sizes"):
        build_dsm(config, other.state_dict())


def _stock_flux_pipeline(transformer):
    """A stock diffusers ``FluxPipeline`` (not ours) around ``transformer``, tiny parts elsewhere."""
    from diffusers import FluxPipeline

    from engine.tiny import tiny_components

    parts = {k: v for k, v in tiny_components().items() if k not in ("image_encoder", "feature_extractor", "dsm")}
    return FluxPipeline(**{**parts, "transformer": transformer})


@pytest.mark.parametrize("alpha", [None, 2.0])
def test_stock_diffusers_load_lora_weights_reads_our_adapter_as_we_do(tmp_path, alpha):
    """``FluxPipeline.load_lora_weights(folder, weight_name=LORA_NAME)`` finds every key (the
    ``transformer.`` prefix) and the alpha (``lora_adapter_metadata``): same DiT output as ours."""
    from safetensors import safe_open

    adapted = tiny_transformer(**LAYERS)
    add_lora(adapted, rank=4, alpha=alpha)
    randomise_lora(adapted)
    folder = save_adapter(tmp_path / "adapter", AstraConfig(dsm=None), adapted, None)
    with safe_open(str(folder / LORA_NAME), framework="pt") as handle:
        assert all(key.startswith("transformer.") for key in handle.keys())
        assert json.loads(handle.metadata()["lora_adapter_metadata"])["transformer.lora_alpha"] == (alpha or 4)

    inputs = dit_inputs()
    base = run(tiny_transformer(**LAYERS), inputs)
    ours = tiny_transformer(**LAYERS)
    config, lora_state, _ = load_adapter(folder)
    apply_lora_state(ours, config.lora, lora_state)
    stock = _stock_flux_pipeline(tiny_transformer(**LAYERS))
    stock.load_lora_weights(str(folder), weight_name=LORA_NAME)
    expected = run(ours, inputs)
    assert (expected - base).abs().max() > 1e-3  # the LoRA changes the output
    torch.testing.assert_close(run(stock.transformer, inputs), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(run(adapted, inputs), expected, rtol=0, atol=1e-6)


def test_adapters_of_the_older_unprefixed_layout_still_load(parts, tmp_path):
    from safetensors.torch import save_file

    transformer, dsm = parts
    folder = save_adapter(tmp_path / "adapter", AstraConfig(), transformer, dsm)
    save_file(lora_state_dict(transformer), str(folder / LORA_NAME), metadata={"format": "pt"})  # pre-prefix files
    _, lora_state, _ = load_adapter(folder)
    assert _states_equal(lora_state, lora_state_dict(transformer))
