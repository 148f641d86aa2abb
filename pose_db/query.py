"""`python -m pose_db.query`: an entry point kept stable for users' scripts; the code is in `pose_db.retrieval.query`."""

from pose_db.retrieval.query import main

if __name__ == "__main__":
    raise SystemExit(main())
