"""Graders for the lessons' exercises: ``check_*(student_fn)`` prints one verdict line.

A check never prints the solution and never raises because the student's code
is wrong: it reports the problem (wrong shape, wrong values, an exception) with
a hint and returns ``False``. ``coursekit student`` writes exercise versions of
the lessons (see ``student.py``).
"""

# each grader is imported on first use (``from coursekit.exercises import check_oks`` works as
# usual), so that ``coursekit.exercises.student`` and ``.grade`` load without torch
_LAZY = {
    "check_chance_prediction": "densepose", "check_cse_loss": "densepose",  # lesson 08
    "check_hflip": "densepose", "check_uv_loss": "densepose",
    "measure_template_chance": "densepose",
    "CUBIFY_PUZZLES": "heads", "check_chamfer": "heads", "check_cubify_bug": "heads",  # 09
    "check_cubify_counts": "heads", "cubify_buggy": "heads",
    "check_flip_ap_prediction": "pose", "check_keypoints_to_heatmap": "pose",  # lesson 07
    "check_oks": "pose",
    "report": "verdict",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"coursekit.exercises.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'coursekit.exercises' has no attribute {name!r}")
