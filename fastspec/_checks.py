"""Checks of the user's arguments, shared by every entry point of fastspec.

A wrong *type* raises TypeError and a wrong *value* of the right type raises
ValueError, as numpy's and stumpy's ``core.check_*`` do; both messages name the
argument and show what was given. ``bool`` is not accepted as an int (``True``
is almost always a slip for another argument).
"""

import numbers

import numpy as np

__all__ = ["check_int", "check_real", "check_flag", "check_callable", "is_int"]


def is_int(value):
    """Whether ``value`` is an integer (Python or numpy), not a bool."""
    return (isinstance(value, (numbers.Integral, np.integer))
            and not isinstance(value, (bool, np.bool_)))


def check_int(name, value, minimum=None, maximum=None, *, allow_none=False, what=""):
    """``value`` as an ``int`` in ``[minimum, maximum]`` (either bound optional).

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : object
        What the user passed.
    minimum, maximum : int, optional
        Inclusive bounds.
    allow_none : bool, default False
        Return None for None.
    what : str, default ""
        Words appended to the expected kind, e.g. ``" (rows per oracle call)"``.

    Returns
    -------
    int or None

    Raises
    ------
    TypeError
        If ``value`` is not an integer (a bool, a float, a string...).
    ValueError
        If it is an integer outside the bounds.
    """
    if value is None and allow_none:
        return None
    if maximum is not None:
        kind = f"an int in {minimum}..{maximum}"
    elif minimum is not None:
        kind = f"an int >= {minimum}"
    else:
        kind = "an int"
    expected = f"{name} must be {'None or ' if allow_none else ''}{kind}{what}, got {value!r}"
    if not is_int(value):
        raise TypeError(f"{expected} ({type(value).__name__})")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(expected)
    return int(value)


def check_real(name, value, what="a real number"):
    """``value`` as a ``float``; TypeError unless it is a real number (int, float or numpy
    scalar; not a bool). Bounds and finiteness are the caller's (ValueError)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating,
                                                                     np.integer)):
        raise TypeError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    return float(value)


def check_flag(name, value):
    """``value`` as a ``bool``; TypeError unless it is True or False (Python or numpy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_callable(name, value, what="callable"):
    """``value`` itself; TypeError naming ``name`` unless it is callable."""
    if not callable(value):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    return value
