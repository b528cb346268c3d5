"""How every exercise check speaks: one line, ✅ or ❌, and a hint.

Under nbgrader's autograder (``NBGRADER_EXECUTION`` set to ``autograde`` or ``validate``) a
failed check also raises ``AssertionError`` so that its test cell scores 0
(``coursekit.exercises.nbgrader``); in a lesson it only prints.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from coursekit.validators import describe


def report(passed: bool, what: str, hint: str = "") -> bool:
    """Print the verdict line and return ``passed``."""
    if passed:
        print(f"✅ correct: {what}")
    else:
        print(f"❌ {what}" + (f" — hint: {hint}" if hint else ""))
        if os.environ.get("NBGRADER_EXECUTION") in ("autograde", "validate"):
            raise AssertionError(f"exercise check failed: {what}")
    return passed


def run_student(fn: Callable, *args, **kwargs):
    """Call the student's function; return (result, None) or (None, 'ErrorType: message').

    Something that is not a function (a result passed instead of the function) is reported too.
    """
    if not callable(fn):
        return None, (f"expected your function, got {describe(fn)} (pass the function itself, "
                      f"e.g. check(my_fn), not check(my_fn(...)))")
    try:
        return fn(*args, **kwargs), None
    except NotImplementedError:
        return None, "not implemented yet (replace the `raise NotImplementedError` with your code)"
    except Exception as err:  # noqa: BLE001 - the student's code may raise anything
        return None, f"your function raised {type(err).__name__}: {err}"
