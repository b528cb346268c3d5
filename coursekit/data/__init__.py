"""The course's data: ShapesWorld scenes (``shapesworld``) and their COCO export (``coco``).

``from coursekit.data import render_scene, render_batch, CATEGORIES`` is the usual entry;
``render_batch(seeds, difficulty="hard")`` gives cluttered, occluded, textured, noisy scenes
with the same fields. ``KEYPOINT_NAMES`` and ``SKELETON`` are ``coursekit.pose``'s COCO
schema (the same objects).
"""

from coursekit.data.shapesworld import (
    CATEGORIES,
    IGNORE,
    KEYPOINT_NAMES,
    NUM_CLASSES,
    PART_NAMES,
    SKELETON,
    STUFF_IDS,
    THING_IDS,
    Scene,
    SceneBatch,
    category_id,
    category_name,
    render_batch,
    render_scene,
)
from coursekit.data.tracks import (  # tracking sequences (tracks.py)
    TrackSequence,
    render_sequence,
    render_sequences,
    sequence_events,
)
from coursekit.data.video import (  # action videos (video.py)
    ACTIONS,
    NUM_ACTIONS,
    VideoBatch,
    action_id,
    render_videos,
)

__all__ = [
    "CATEGORIES", "IGNORE", "KEYPOINT_NAMES", "NUM_CLASSES", "PART_NAMES", "SKELETON",
    "STUFF_IDS", "THING_IDS", "Scene", "SceneBatch", "category_id", "category_name",
    "render_batch", "render_scene",
    "TrackSequence", "render_sequence", "render_sequences", "sequence_events",
    "ACTIONS", "NUM_ACTIONS", "VideoBatch", "action_id", "render_videos",
]
