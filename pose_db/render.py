"""`python -m pose_db.render`: an entry point kept stable for users' scripts; the code is in `pose_db.scene.render`."""

from pose_db.scene.render import main

if __name__ == "__main__":
    raise SystemExit(main())
