"""User-facing errors: the CLI prints their message as one line and exits non-zero."""

import errno


class DpotError(Exception):
    """Bad input or a failed precondition the user can fix; the message says what and how."""


def environment_error(exc: OSError, command: str) -> str | None:
    """A one-line message for an OSError caused by the machine's state (full disk, no permission, read-only
    file system, missing file), or None for any other OSError (a bug: it keeps its traceback)."""
    where = f" {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        kept = "; the last good checkpoint is kept" if command in ("pretrain", "finetune", "demo") else ""
        return f"disk full{' writing' + where if where else ''}: free space and rerun{kept}"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write{where}: {exc.strerror} (choose another folder or fix its permissions)"
    if exc.errno == errno.ENOENT and exc.filename:
        return f"{exc.filename}: no such file or folder"
    return None
