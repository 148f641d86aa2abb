"""The studio's panels: one module per block of the page, each with a ``build_*`` function that
lays the block out (inside the Blocks context) and returns a dataclass of its components.

    subjects     ① the subject cards (image, name, colour)
    retrieval    ② the prompt, Retrieve, and the gallery of retrieved skeletons
    examples     ② ready-made subjects and prompts
    photo        ③ pose from a photo
    assignment   ④ one dropdown per skeleton person
    results      ⑤ Generate / Stop, the results gallery, recipe, download, restore
    settings     ⑤ size presets, steps, guidance, seed, binding strength

(The skeleton editor ③ is the ``ui.pose_editor`` component.)

The rule: **panel-local events in the panel, cross-panel events in ``ui/events.py``.** An event
whose inputs and outputs all belong to one panel (add a subject card, pick a size preset, show
the picked result) is wired by that panel's ``build_*``; an event that reads or writes another
panel (Retrieve fills the editor, Generate reads every panel) is wired in ``ui.events``.
Panels import the non-panel helpers (``ui.config``, ``ui.subjects``, ``ui.generation``, ...),
never the other way round.
"""
