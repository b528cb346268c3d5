"""Graders for the lessons' exercises: ``check_*(student_fn)`` prints one verdict line.

A check never prints the solution and never raises because the student's code
is wrong: it reports the problem (wrong shape, wrong values, an exception) with
a hint and returns ``False``. ``coursekit student`` writes exercise versions of
the lessons (see ``student.py``).
"""

from coursekit.exercises.densepose import (  # noqa: F401  (lesson 08)
    check_chance_prediction,
    check_cse_loss,
    check_uv_loss,
    measure_template_chance,
)
from coursekit.exercises.heads import (  # noqa: F401  (lesson 09)
    CUBIFY_PUZZLES,
    check_chamfer,
    check_cubify_bug,
    check_cubify_counts,
    cubify_buggy,
)
from coursekit.exercises.pose import (  # noqa: F401  (lesson 07)
    check_flip_ap_prediction,
    check_keypoints_to_heatmap,
    check_oks,
)
from coursekit.exercises.verdict import report  # noqa: F401
