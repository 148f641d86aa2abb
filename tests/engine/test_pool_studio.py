"""The studio's GPU queue admits one event per resident engine (``--gpus``)."""

from __future__ import annotations

import pytest

from engine.pool import EnginePool


@pytest.mark.parametrize("engines", [1, 3])
def test_every_gpu_event_shares_one_group_sized_to_the_engines(engines):
    from ui import StudioConfig, build_studio

    pool = EnginePool.tiny(1)  # the studio reads only info(); the size comes from the config
    demo = build_studio(engine=pool, retriever=None, config=StudioConfig(gpu_concurrency=engines))
    gpu = [fn for fn in demo.fns.values() if fn.concurrency_id == "gpu"]
    names = {fn.api_name for fn in gpu}
    assert {"generate", "pose_from_photo"} <= names and len(gpu) >= 4  # API + page events
    # Gradio applies the lowest limit of a group: every member must carry the engine count.
    assert {fn.concurrency_limit for fn in gpu} == {engines}
