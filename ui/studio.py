"""The studio page: ``build_studio(engine, retriever, config)`` lays out the panels in the
order of a creator's journey (subjects → prompt → RAG-Pose → edit → assign → generate) and
hands them to ``ui.events`` and ``ui.api`` to wire."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .api import build_api
from .config import StudioConfig
from .engine_status import engine_status, hands_note
from .events import wire_studio
from .generation import Generator, SessionCancel
from .panels.assignment import AssignmentPanel, build_assignment_panel
from .panels.examples import build_examples
from .panels.library import LibraryPanel, build_library_panel, library_browser, wire_library
from .panels.photo import PhotoPanel, build_photo_panel
from .panels.results import ResultsPanel, build_results_panel
from .panels.retrieval import RetrievalPanel, build_retrieval_gallery, build_retrieval_prompt
from .panels.settings import SettingsPanel, build_settings_panel
from .panels.subjects import SubjectsPanel, build_subjects_panel
from .pose_editor import PoseEditor


@dataclass
class Studio:
    """Every panel of the page, for the event wiring and for tests."""

    subjects: SubjectsPanel
    retrieval: RetrievalPanel
    editor: PoseEditor
    photo: PhotoPanel
    assignment: AssignmentPanel
    settings: SettingsPanel
    results: ResultsPanel
    cancel: gr.State
    library: LibraryPanel | None = None


def build_studio(engine, retriever, config: StudioConfig | None = None,
                 detector=None) -> gr.Blocks:
    """The studio as a queued ``gr.Blocks``; launch it with ``ui.launch_options(...)``.

    Args:
        engine: the engine service (``engine.service.EngineService``: real, tiny or unavailable).
        retriever: the RAG-Pose retriever (``pose_db.retrieval.retriever.PoseRetriever``).
        config: presets, limits and switches (ZeroGPU); defaults to ``StudioConfig()``.
        detector: optional pose-from-photo detector (``pose_db.library.detector.PoseDetector``);
            without one the photo control explains what is missing.
    """
    config = config or StudioConfig()
    info = engine.info()
    limits = config.limits
    gpu = None
    if config.zero_gpu:
        import spaces  # only present on Spaces; app.py imported it before anything touched CUDA

        gpu = spaces.GPU(duration=config.gpu_duration)
    generator = Generator(engine, gpu=gpu)

    with gr.Blocks(title="ASTRA Studio", fill_width=True, delete_cache=(3600, 24 * 3600),
                   elem_id="astra-studio") as demo:
        with gr.Row(elem_classes=["studio-header"], equal_height=True):
            gr.HTML("<h1>ASTRA <span>Studio</span></h1><p>Subjects, retrieved poses and "
                    "one prompt → a multi-subject scene.</p>", elem_classes=["brand"])
            gr.Markdown(engine_status(info, config), elem_id="engine-status",
                        elem_classes=["engine-status", f"engine-{info.kind}"])
        with gr.Row(elem_classes=["studio-main"]):
            with gr.Column(scale=3, min_width=280, elem_classes=["studio-panel", "subjects-panel"]):
                gr.Markdown("### ① Subjects")
                subjects = build_subjects_panel(limits)
            with gr.Column(scale=6, min_width=340, elem_classes=["studio-panel", "pose-panel"]):
                gr.Markdown("### ② Prompt and poses")
                prompt, people, retrieve = build_retrieval_prompt()
                build_examples(subjects, prompt, people, config)
                gallery, status, scenes, placed = build_retrieval_gallery()
                retrieval = RetrievalPanel(prompt, people, retrieve, gallery, status, scenes,
                                           placed)
                library = build_library_panel()
                gr.Markdown("### ③ Edit the skeletons")
                editor = PoseEditor(elem_id="pose-editor")
                gr.Markdown(hands_note(info), elem_id="hands-note", elem_classes=["hands-note"])
                photo = build_photo_panel(detector)
                gr.Markdown("### ④ Assign people to subjects")
                assignment = build_assignment_panel()
            with gr.Column(scale=4, min_width=300, elem_classes=["studio-panel", "generate-panel"]):
                gr.Markdown("### ⑤ Generate")
                results = build_results_panel(engine_ready=info.kind != "none")
                with gr.Accordion("Settings", open=True, elem_id="settings"):
                    settings = build_settings_panel(config.presets, config.defaults_for(info.kind),
                                                    control=info.control_defaults)
        studio = Studio(subjects, retrieval, editor, photo, assignment, settings, results,
                        gr.State(SessionCancel()), library)
        # The API first: it claims the plain endpoint names (/retrieve, /generate, ...).
        build_api(generator=generator, retriever=retriever, detector=detector, config=config,
                  defaults=config.defaults_for(info.kind))
        wire_studio(studio, generator=generator, retriever=retriever, detector=detector,
                    config=config)
        wire_library(library, library_browser(retriever), limits, dict(api_visibility="private"))
    # GPU events share the "gpu" group, one slot per resident engine (config.gpu_concurrency,
    # ui.api.gpu_queue); a bounded queue refuses the overflow.
    demo.queue(max_size=limits.queue_max_size, default_concurrency_limit=4)
    return demo
