"""How the studio looks: theme, stylesheet and launch options (Gradio 6 takes them in launch())."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

STATIC = Path(__file__).with_name("static")
STUDIO_CSS = STATIC / "studio.css"


def studio_theme() -> gr.themes.Base:
    # LocalFont ships with Gradio: no font is fetched from the network.
    return gr.themes.Soft(
        primary_hue="violet", secondary_hue="sky", neutral_hue="slate",
        radius_size="md", spacing_size="sm",
        font=[gr.themes.LocalFont("IBM Plex Sans"), "ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=[gr.themes.LocalFont("IBM Plex Mono"), "ui-monospace", "monospace"],
    ).set(block_title_text_weight="600", button_large_text_weight="600")


def css_paths() -> list[Path]:
    return [STUDIO_CSS]


HEAD = ('<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="description" content="ASTRA Studio: multi-subject, pose-controlled '
        'image generation">'
        # The page's footer sits outside the app, where studio.css does not reach: on phones
        # it needs room to scroll clear of the fixed Generate bar (studio.css, same width).
        '<style>@media (max-width: 640px) { footer '
        '{ margin-bottom: 76px !important; } }</style>')


def launch_options(max_file_size: str, max_request_size: str | None = None) -> dict:
    """Keyword arguments for ``Blocks.launch`` shared by ``app.py`` and the tests.

    ``max_request_size`` caps every request body (default: ``presets.yaml``'s limit)."""
    from .config import Limits
    from .request_limits import middleware

    return dict(
        theme=studio_theme(), css_paths=css_paths(), head=HEAD,
        footer_links=["api", "settings"],
        max_file_size=max_file_size,
        app_kwargs={"middleware": middleware(max_request_size or Limits.load().max_request_size)},
        # Runs would be saved in the browser with their inputs; the studio has its own history.
        run_history=False,
        # No allowed_paths: the studio serves nothing from disk beyond its own results.
        show_error=True,
    )
