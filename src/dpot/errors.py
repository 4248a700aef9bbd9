"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class DpotError(Exception):
    """Bad input or a failed precondition the user can fix; the message says what and how."""
