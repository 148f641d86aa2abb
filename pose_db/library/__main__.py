"""`python -m pose_db.library`: check the action specs, generate and report (see `generate`)."""

from .generate import main

raise SystemExit(main())
