"""The pose library (paper section 3.1.1), synthesised from data instead of FLUX.1-pro + GPT-4o.

``rig/`` (3D body, kinematics, IK, cameras) → ``specs`` (the action files in ``actions/``) →
``staging`` (people posed and placed, contacts solved) → ``variations`` (the paper's prompt axes)
→ ``gate`` (the quality gate) → ``generate`` (entries, ``python -m pose_db.library``) →
``pool`` (generation in worker processes); ``contact_sheet`` for review by eye and
``importers`` for real data (COCO, OpenPose folders, photos through a detector).
"""
