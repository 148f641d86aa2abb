"""Shared test helpers: plain functions and constants that several test modules use.

Fixtures live in ``conftest.py`` files (``tests/conftest.py`` for the whole suite, one per
package for its own); test modules import helpers from here, never from another test module.

* ``poses``: hand-made standing people and scenes (no rig).
* ``entries``: hand-made library entries (``tiny_entries``, ``many_entries``) and an exact top-k.
* ``retrieval``: the retrieval tests' entries (``ENTRIES``) built into a real ``PoseIndex``,
  ``CountingEmbedder``, ``RecordingIndex``.
* ``launch``: the studio launched in-process on a free port (``running_studio``, ``free_port``).
* ``browser``: driving the pose editor in Chromium (``EDITOR``, ``open_editor``, ``kp``, ``screen``, ``drag``).
* ``dit``: a tiny Flux transformer and its inputs; ``pipeline``: inputs and a runner for the tiny pipeline.

The fast loop skips tests marked ``slow``: ``pytest -m "not slow"``; the full suite (CI) runs all.
"""
