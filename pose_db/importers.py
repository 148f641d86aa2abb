"""`python -m pose_db.importers`: an entry point kept stable for users' scripts; the code is in `pose_db.index.grow`."""

from pose_db.index.grow import main

if __name__ == "__main__":
    raise SystemExit(main())
