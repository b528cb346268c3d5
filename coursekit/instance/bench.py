"""``coursekit bench instance``: mask targets, pasting and COCO AP vs torchvision / pycocotools.

Rows: ``project_masks_on_boxes`` (64 positive proposals, 28 × 28 targets from
16 ground-truth 64 × 64 masks), ``mask_rcnn_loss``, ``paste_masks_in_image`` (50
detections into a 64 × 64 image, and 100 into 800 × 1333; ours is two batched matrix
products per chunk of masks, torchvision loops over masks), and mask AP on 100 synthetic
images (ours vs ``COCOeval``, when pycocotools is installed). Ours runs with
``aligned=False``, torchvision's convention, so both compute the same numbers.
torchvision and pycocotools are imported here only, to compare.
"""

from __future__ import annotations

import torch
from torchvision.models.detection import roi_heads as tv

from coursekit.bench import time_call
from coursekit.instance.ap import evaluate_coco_style
from coursekit.instance.paste import paste_masks_in_image
from coursekit.instance.targets import mask_rcnn_loss, project_masks_on_boxes


def _row(name: str, ours: float, reference: float, note: str) -> dict:
    return {"benchmark": name, "ours": f"{ours * 1e3:.1f} ms",
            "reference": f"{reference * 1e3:.1f} ms", "ratio": ours / reference, "note": note}


def _boxes(n: int, size: float, generator: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator) * size * 0.7
    return torch.cat([xy, xy + torch.rand(n, 2, generator=generator) * size * 0.3 + 4], 1)


def _ap_case(n_images: int, generator: torch.Generator):
    """Ground truths (rectangles) and noisy predictions for the AP benchmark."""
    ys, xs = torch.arange(64)[:, None], torch.arange(64)[None]

    def masks(b: torch.Tensor) -> torch.Tensor:
        r = b.round().long()[:, :, None, None]  # (N, 4, 1, 1)
        return (ys >= r[:, 1]) & (ys < r[:, 3]) & (xs >= r[:, 0]) & (xs < r[:, 2])

    preds, gts = [], []
    for _ in range(n_images):
        gt = _boxes(4, 64.0, generator)
        dt = torch.cat([gt + torch.randn(4, 4, generator=generator), _boxes(6, 64.0, generator)])
        labels = torch.randint(0, 4, (4,), generator=generator)
        gts.append({"boxes": gt, "labels": labels, "masks": masks(gt)})
        other = torch.randint(0, 4, (6,), generator=generator)
        preds.append({"boxes": dt, "labels": torch.cat([labels, other]),
                      "scores": torch.rand(10, generator=generator), "masks": masks(dt)})
    return preds, gts


def bench(quick: bool = False) -> list[dict]:
    """Time ours against the reference; one row per case (median of several runs)."""
    repeat = 3 if quick else 7
    g = torch.Generator().manual_seed(0)
    gt_masks = torch.rand(16, 64, 64, generator=g) > 0.5
    boxes = _boxes(64, 64.0, g)
    idx = torch.randint(0, 16, (64,), generator=g)
    rows = [_row("project_masks_on_boxes, 64 boxes, M = 28",
                 time_call(lambda: project_masks_on_boxes(gt_masks, boxes, idx, 28, aligned=False),
                           repeat=repeat),
                 time_call(lambda: tv.project_masks_on_boxes(gt_masks, boxes, idx, 28),
                           repeat=repeat),
                 "RoI Align on the masks (ours: separable, Ay · mask · Axᵀ); fp32")]
    logits = torch.randn(64, 5, 28, 28, generator=g)
    labels = torch.randint(1, 5, (16,), generator=g)
    args = (logits, [boxes], [gt_masks], [labels], [idx])
    rows.append(_row("mask_rcnn_loss, 64 positives, C = 5",
                     time_call(lambda: mask_rcnn_loss(*args, aligned=False), repeat=repeat),
                     time_call(lambda: tv.maskrcnn_loss(*args), repeat=repeat),
                     "BCE on the GT class's channel"))
    masks = torch.rand(50, 1, 28, 28, generator=g)
    dets = _boxes(50, 64.0, g)
    rows.append(_row("paste_masks_in_image, 50 masks into 64×64",
                     time_call(lambda: paste_masks_in_image(masks, dets, (64, 64), aligned=False),
                               repeat=repeat),
                     time_call(lambda: tv.paste_masks_in_image(masks, dets, (64, 64)),
                               repeat=repeat),
                     "ours: Ry · mask · Rxᵀ per chunk; torchvision loops"))
    # quick: 25 masks, as torchvision's paste holds ~8.5 MB per mask (its float canvases
    # and their stack): 100 took the suite's bench test to 1.5 GB RSS
    n_big = 25 if quick else 100
    big = torch.rand(n_big, 1, 28, 28, generator=g)
    xy = torch.rand(n_big, 2, generator=g) * torch.tensor([1333 * 0.8, 800 * 0.8])
    big_boxes = torch.cat([xy, xy + torch.rand(n_big, 2, generator=g) * 200 + 10], 1)
    few = 1 if quick else 3
    rows.append(_row(f"paste_masks_in_image, {n_big} masks into 800×1333",
                     time_call(lambda: paste_masks_in_image(big, big_boxes, (800, 1333),
                                                            aligned=False), repeat=few),
                     time_call(lambda: tv.paste_masks_in_image(big, big_boxes, (800, 1333)),
                               repeat=few),
                     "ours: memory = output + 16 MiB budget"))
    try:
        from coursekit.instance.coco_eval import coco_evaluate, to_coco_ground_truth
    except ImportError:  # pycocotools is a test extra
        return rows
    preds, gts = _ap_case(20 if quick else 100, g)
    coco_gt = to_coco_ground_truth(gts)
    ours = evaluate_coco_style(preds, gts, "segm")
    ref = coco_evaluate(preds, coco_gt, "segm")
    half = max(1, repeat // 2)
    rows.append(_row(f"mask AP, {len(gts)} images, 10 detections each",
                     time_call(lambda: evaluate_coco_style(preds, gts, "segm"), repeat=half),
                     time_call(lambda: coco_evaluate(preds, coco_gt, "segm"), repeat=half),
                     f"AP {ours['ap']:.4f} vs COCOeval {ref['ap']:.4f} (incl. RLE export)"))
    return rows
