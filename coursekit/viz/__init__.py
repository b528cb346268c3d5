"""Visualisation helpers: draw masks, boxes, keypoints, panoptic maps, flow and depth onto
image tensors (float Tensor[3, H, W] in [0, 1], on the input's device), tile them into
grids, and show them with matplotlib.

Every drawing function returns a tensor, so a test can check its pixels; ``show`` is the
one thin matplotlib wrapper. matplotlib itself is imported only when a function needs it.
"""

from coursekit.viz.colors import CATEGORY_COLORS, hsv_to_rgb, label_colors, palette, rgb_to_hsv
from coursekit.viz.dense import depth_to_color, flow_to_color, flow_wheel_legend, make_colorwheel
from coursekit.viz.grid import image_grid, show, to_numpy_image
from coursekit.viz.overlay import (
    COCO_SKELETON_0BASED,
    draw_boxes,
    draw_keypoints,
    instance_colors,
    overlay_masks,
    panoptic_colors,
    parts_colors,
    segment_boundaries,
    uv_colors,
)
from coursekit.viz.tracks import (  # tracks: strips, trails, animation (tracks.py)
    animate_tracks,
    animation_html,
    id_colors,
    plot_track_strip,
    track_trails,
)

__all__ = [
    "CATEGORY_COLORS",
    "COCO_SKELETON_0BASED",
    "depth_to_color",
    "draw_boxes",
    "draw_keypoints",
    "flow_to_color",
    "flow_wheel_legend",
    "hsv_to_rgb",
    "image_grid",
    "instance_colors",
    "label_colors",
    "make_colorwheel",
    "overlay_masks",
    "palette",
    "panoptic_colors",
    "parts_colors",
    "rgb_to_hsv",
    "segment_boundaries",
    "show",
    "to_numpy_image",
    "uv_colors",
    "animate_tracks", "animation_html", "id_colors", "plot_track_strip", "track_trails",
]
