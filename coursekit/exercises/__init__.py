"""Graders for the lessons' exercises: ``check_*(student_fn)`` prints one verdict line.

A check never prints the solution and never raises because the student's code
is wrong: it reports the problem (wrong shape, wrong values, an exception) with
a hint and returns ``False``. ``coursekit student`` writes exercise versions of
the lessons (see ``student.py``).
"""

from coursekit.exercises.verdict import report  # noqa: F401
