"""Errors a user can fix: printed as one clear message (no traceback), exit code 2."""


class SuiteError(Exception):
    """Bad input, bad config, a missing resource: the message says what and where."""
