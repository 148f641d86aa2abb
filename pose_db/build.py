"""`python -m pose_db.build`: an entry point kept stable for users' scripts; the code is in `pose_db.index.build`."""

from pose_db.index.build import main

if __name__ == "__main__":
    raise SystemExit(main())
