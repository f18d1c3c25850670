"""Errors a user can fix. The CLI prints them as one line, never a traceback."""


class UserError(Exception):
    """A mistake in configuration or input: the message says what, where, and what to do."""
