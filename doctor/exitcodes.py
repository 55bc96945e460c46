"""Process exit codes, one meaning each, shared by every command (documented in the README).

Scripts branch on these, so they never change meaning: add new codes, never renumber.
"""
OK = 0            # healthy / log shows no failure / run verified
ERRORS = 1        # at least one error finding / root cause found / run not verified
USAGE = 2         # bad arguments or unreadable input (click uses 2 for usage errors too)
WARNINGS = 3      # only warnings (use --strict to turn them into 1)
UNCHECKED = 4     # nothing wrong found, but some checks could not run
UNEXPLAINED = 5   # explain: the log shows a failure that no rule explains
NOT_FIXABLE = 6   # run: the cause is known but no automatic fix is allowed or possible
INTERNAL = 70     # lmdoctor itself failed (a bug: please report it)

MEANINGS = {
    OK: "healthy / nothing wrong / verified",
    ERRORS: "errors found / root cause found / not verified",
    USAGE: "usage error or unreadable input",
    WARNINGS: "warnings only",
    UNCHECKED: "some checks could not run, nothing else wrong",
    UNEXPLAINED: "a failure no rule explains",
    NOT_FIXABLE: "cause known, not automatically fixable",
    INTERNAL: "internal error in lmdoctor",
}
