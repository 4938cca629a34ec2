"""Typed errors. A UserError is something the user can fix; the CLI prints its message as one line
and exits non-zero, the dashboard shows it with st.error. Anything else is a bug and may traceback."""


class UserError(Exception):
    """Bad input or environment the user can fix (message is one line, no traceback needed)."""


class InputError(UserError):
    """Bad request: trim outside the video, bad keyframes, unknown model or GPU, bad option."""


class MediaError(UserError):
    """A source file that cannot be read or decoded (corrupt or not a video/image)."""


class WeightsError(UserError):
    """Model weights cannot be resolved (offline with no cached copy, bad checksum, bad file)."""


class StorageError(UserError):
    """Object storage failed: missing object, bad key, wrong or missing credentials, unreachable."""


class BackendError(UserError):
    """A backend could not run a job: no Modal token, Modal unreachable, a worker died."""


def one_line(exc: BaseException) -> str:
    """The exception as a single line: 'message' for user errors, 'Type: message' otherwise."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, UserError) else f"{type(exc).__name__}: {text}"
