"""Grader for lesson 00 (the tour): what can be derived from a panoptic map alone?"""

from __future__ import annotations

from collections.abc import Callable

from coursekit.exercises.verdict import report, run_student

__all__ = ["PANOPTIC_DERIVABLE", "TOUR_OUTPUTS", "check_derivable_from_panoptic"]

# every output the tour shows, and why it can or cannot be read off a panoptic map
TOUR_OUTPUTS = {
    "semantic": "each segment has a category: paint it on its pixels",
    "instances": "each thing segment's pixels are one instance mask",
    "boxes": "an instance mask's extreme rows and columns give its tight box",
    "keypoints": "a person's mask says where the person is, not where the joints are",
    "parts": "a segment is the whole person; which body part a pixel is needs a DensePose head",
    "depth": "segment ids carry no distance",
    "flow": "one frame's segments say nothing about motion to the next frame",
}
PANOPTIC_DERIVABLE = frozenset({"semantic", "instances", "boxes"})


def check_derivable_from_panoptic(fn: Callable[[], object]) -> bool:
    """Grade ``fn() -> set of names from TOUR_OUTPUTS``: the outputs a panoptic map determines."""
    result, error = run_student(fn)
    if error:
        return report(False, error)
    if not isinstance(result, (set, frozenset, list, tuple)) or not all(
        isinstance(r, str) for r in result
    ):
        return report(False, f"expected a set of names, got {type(result).__name__}",
                      f"choose from {sorted(TOUR_OUTPUTS)}")
    chosen = set(result)
    unknown = chosen - set(TOUR_OUTPUTS)
    if unknown:
        return report(False, f"unknown output names {sorted(unknown)}",
                      f"choose from {sorted(TOUR_OUTPUTS)}")
    if chosen == PANOPTIC_DERIVABLE:
        return report(True, "semantic labels, instance masks and boxes all follow from the "
                            "panoptic map; keypoints, parts, depth and flow need their own heads")
    extra, missing = sorted(chosen - PANOPTIC_DERIVABLE), sorted(PANOPTIC_DERIVABLE - chosen)
    if extra:
        name = extra[0]
        return report(False, f"{name!r} cannot be derived from the panoptic map",
                      TOUR_OUTPUTS[name])
    name = missing[0]
    return report(False, f"{len(missing)} derivable output(s) missing",
                  f"think about {name!r}: can you compute it from segment ids and categories?")
