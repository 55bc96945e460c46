"""`lmdoctor run`: launch a command as a killable process group, watch it, fix and relaunch it."""
