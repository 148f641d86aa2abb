"""`python -m pose_db.detect PHOTO [--out POSE.json]`: the people in a photo as OpenPose JSON; the code is in `pose_db.library.detector`."""

from pose_db.library.detector import main

if __name__ == "__main__":
    raise SystemExit(main())
