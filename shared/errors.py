"""The one exception type for mistakes a user can fix (bad config, bad data, bad request).

The CLI prints its message on one line and exits with status 2, with no traceback; the
server turns it into a 4xx with the same message. Anything else is a bug and keeps its
traceback.
"""


class UserError(Exception):
    """A problem in the user's input, config or data, with a message that says how to fix it."""
