"""pycocotools as the reference for ``coursekit.pose.oks`` (shared by tests/pose/test_oks.py
and tests/properties/test_props_pose.py)."""

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

F64 = torch.float64


def coco_oks(gt_kps, dt_kps, area, boxes_xyxy):
    """pycocotools' computeOks for one image: Tensor[D, G] -> returned as Tensor[G, D]."""
    G, D = gt_kps.shape[0], dt_kps.shape[0]
    assert D <= 20  # COCOeval keeps the 20 best-scored detections
    anns = []
    for g in range(G):
        x1, y1, x2, y2 = boxes_xyxy[g].tolist()
        anns.append({"id": g + 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                     "area": float(area[g]), "bbox": [x1, y1, x2 - x1, y2 - y1],
                     "keypoints": gt_kps[g].reshape(-1).tolist(),
                     "num_keypoints": int((gt_kps[g, :, 2] > 0).sum())})
    gt = COCO()
    gt.dataset = {"images": [{"id": 1, "width": 640, "height": 480}], "annotations": anns,
                  "categories": [{"id": 1, "name": "person"}]}
    gt.createIndex()
    dets = [{"image_id": 1, "category_id": 1, "keypoints": dt_kps[d].reshape(-1).tolist(),
             "score": 1.0 - d / 100} for d in range(D)]  # distinct, descending: order kept
    dt = gt.loadRes(dets)
    E = COCOeval(gt, dt, iouType="keypoints")
    E.params.imgIds = [1]
    E._prepare()
    return torch.as_tensor(np.asarray(E.computeOks(1, 1)), dtype=F64).T  # (G, D)
