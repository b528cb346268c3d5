"""py-motmetrics as the reference for ``coursekit.tracking.mot_metrics`` (shared by
tests/tracking/test_metrics.py and tests/properties/test_props_video_tracking.py).

py-motmetrics is fed distances ``1 - IoU`` with NaN where ``IoU < iou_threshold`` (its own
``distances.iou_matrix`` uses ``np.asfarray``, gone in numpy 2), IoU computed here in numpy.
"""

import numpy as np

# our key -> py-motmetrics' metric name
NAMES = {
    "mota": "mota", "motp": "motp", "idf1": "idf1", "idp": "idp", "idr": "idr",
    "precision": "precision", "recall": "recall", "id_switches": "num_switches",
    "fp": "num_false_positives", "fn": "num_misses", "tp": "num_detections",
    "num_objects": "num_objects", "num_predictions": "num_predictions", "idtp": "idtp",
    "idfp": "idfp", "idfn": "idfn", "fragmentations": "num_fragmentations",
    "mostly_tracked": "mostly_tracked", "partially_tracked": "partially_tracked",
    "mostly_lost": "mostly_lost", "num_frames": "num_frames",
    "num_unique_objects": "num_unique_objects",
}


def numpy_iou(a, b):
    """IoU of every box of ``a`` [G, 4] with every box of ``b`` [P, 4] (xyxy): [G, P] float64."""
    a, b = a.double().cpu().numpy()[:, None], b.double().cpu().numpy()[None]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return (inter / (area_a + area_b - inter)).reshape(a.shape[0], b.shape[1])


def motmetrics_reference(gt, pred, iou_threshold=0.5):
    """``{our key: py-motmetrics' value}`` for frames ``[(ids, boxes), ...]`` of truth and
    predictions (the layout ``mot_metrics`` takes)."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    for (g_ids, g_boxes), (p_ids, p_boxes) in zip(gt, pred, strict=True):
        iou = numpy_iou(g_boxes, p_boxes)
        acc.update(g_ids.tolist(), p_ids.tolist(),
                   np.where(iou >= iou_threshold, 1.0 - iou, np.nan))
    summary = mm.metrics.create().compute(acc, metrics=list(NAMES.values()), name="seq")
    return {ours: float(summary[theirs].iloc[0]) for ours, theirs in NAMES.items()}
