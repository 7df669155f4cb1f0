"""Errors that stop a run. Input faults are not errors here: they become manifest rows."""


class SystemicError(Exception):
    """A fault that is not the input's (missing weights, bad install, out of memory): stops the run."""
