"""The one exception type for user errors.

Anything the user can fix (a bad flag, a malformed file, a missing data
directory) raises :class:`OpticalError` with a single line that names the
file, line or value and says what to do. The CLI prints that line and exits
with status 2 instead of showing a traceback.
"""


class OpticalError(Exception):
    """A user-facing error: one line, naming the culprit and the remedy."""
