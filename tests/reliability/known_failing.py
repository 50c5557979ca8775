"""What fails on today's code: (entry point pair id) -> reason, for strict xfail marks.

Generated from a run of the capped runner on the harness branch (before the issue 13 fixes), then
edited by hand. Once a fix lands, its pairs XPASS: delete their lines here. Empty since the issue 13
fixes landed: every pair holds; a new known failure goes here with its reason until it is fixed.
"""

KNOWN_CAPPED: dict[str, str] = {
}
