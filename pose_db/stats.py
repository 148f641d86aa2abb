"""`python -m pose_db.stats`: an entry point kept stable for users' scripts; the code is in `pose_db.index.stats`."""

from pose_db.index.stats import main

if __name__ == "__main__":
    raise SystemExit(main())
