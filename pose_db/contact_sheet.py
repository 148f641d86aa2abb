"""`python -m pose_db.contact_sheet`: an entry point kept stable for users' scripts; the code is in `pose_db.library.contact_sheet`."""

from pose_db.library.contact_sheet import main

if __name__ == "__main__":
    raise SystemExit(main())
