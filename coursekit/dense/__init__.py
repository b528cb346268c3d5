"""Other pixel tasks: depth and optical flow as dense regression (lesson 04)."""

from coursekit.dense.depth import depth_metrics, scale_invariant_loss, scale_invariant_loss_loop
from coursekit.dense.flow import end_point_error, flow_metrics, warp

__all__ = ["depth_metrics", "end_point_error", "flow_metrics", "scale_invariant_loss",
           "scale_invariant_loss_loop", "warp"]
