"""Train the joint Mask R-CNN (boxes, masks, keypoints) on ShapesWorld; evaluate; load.

Training scenes are rendered on the fly at ``RECIPE["size"]`` pixels (step ``s`` uses seeds
``s * B .. s * B + B - 1``), without crowd groups and with more persons than the default
scenes (``p_person``), each flipped left-right with probability ``flip`` by
``coursekit.pose.hflip`` — image, boxes, masks and keypoints, left and right keypoints
swapped (``COCO_FLIP_INDEX``). The keypoint targets are one ``Tensor[G, 17, 3]`` per image,
one row per instance (zeros for the things that are not persons: ``v = 0``, never trained).
``init="maskrcnn"`` starts the trunk and the box and mask heads from lesson 05's shipped
Mask R-CNN (as Mask R-CNN starts from an ImageNet backbone); the keypoint head starts
from scratch, and all heads then train together. Evaluation: held-out seeds from
``HELD_OUT_START``, default scene settings, keypoint AP (OKS) and mask / box AP, ours and
pycocotools' (``evaluate.py``).

    coursekit train keypointrcnn            # -> runs/keypointrcnn/keypointrcnn.pt
    coursekit install-checkpoint runs/keypointrcnn
    model = load_keypointrcnn()
    model.predict(render_scene(3_000_000, size=96).image)  # + "keypoints", "keypoints_scores"

Tested in tests/pose/test_keypoint_rcnn.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from coursekit.instance.mask_rcnn import MaskRCNN
from coursekit.pose.coco_keypoints import NUM_KEYPOINTS
from coursekit.pose.flip import hflip
from coursekit.pose.keypoint_rcnn import KEYPOINT_CONFIG, build_keypoint_rcnn
from coursekit.validators import count_parameters

__all__ = ["HELD_OUT_START", "RECIPE", "keypoint_targets_from_scenes", "load_keypointrcnn",
           "train_keypointrcnn"]

HELD_OUT_START = 3_000_000  # as lesson 05's: never a training seed
RECIPE: dict[str, Any] = {
    "steps": 1800, "batch_size": 8, "lr": 1e-3, "weight_decay": 1e-4, "warmup": 50,
    "size": 96, "p_person": 0.5, "flip": 0.5, "init": "maskrcnn",
}  # fmt: skip


def keypoint_targets_from_scenes(scenes: Any, thing_ids: list[int],
                                 device: torch.device | str | None = None,
                                 flip: Tensor | None = None) -> tuple[Tensor,
                                                                      list[dict[str, Tensor]]]:
    """Images and torchvision-style targets with keypoints from a ``SceneBatch``, crowds dropped.

    Returns ``(images Tensor[B, 3, H, W], targets)``, each target ``{"boxes", "labels"
    (class index 1..C-1), "masks", "keypoints": Tensor[G, 17, 3]}`` with one keypoint row per
    instance (the person's keypoints, zeros for other things). ``flip``: bool Tensor[B], the
    images to mirror left-right with their annotations (``hflip``).
    """
    index = {tid: i + 1 for i, tid in enumerate(thing_ids)}
    images, targets = [], []
    for j in range(len(scenes)):
        boxes, labels, masks = scenes.boxes[j].float(), scenes.labels[j], scenes.masks[j]
        keypoints = boxes.new_zeros(len(boxes), NUM_KEYPOINTS, 3)  # (G, 17, 3)
        keypoints[scenes.person_index[j]] = scenes.keypoints[j].float()
        image = scenes.image[j]
        if flip is not None and bool(flip[j]):
            image, keypoints, boxes, masks = hflip(image, keypoints, boxes, masks)
        keep = ~scenes.iscrowd[j]
        cls = torch.tensor([index[int(v)] for v in labels[keep].tolist()], dtype=torch.int64)
        images.append(image)
        targets.append({"boxes": boxes[keep].to(device), "labels": cls.to(device),
                        "masks": masks[keep].to(device), "keypoints": keypoints[keep].to(device)})
    return torch.stack(images).to(device), targets


def _init_from_maskrcnn(model: MaskRCNN) -> str:
    """Copy the shipped Mask R-CNN's weights into ``model`` (all but the keypoint head).

    Returns the shipped checkpoint's sha256 (recorded with the run).
    """
    from coursekit.checkpoints import checkpoint_dir, read_manifest
    from coursekit.instance.train import load_maskrcnn

    source = load_maskrcnn().state_dict()  # sha256-checked
    missing, unexpected = model.load_state_dict(source, strict=False)
    if unexpected or any(not k.startswith("roi_heads.extra_heads.") for k in missing):
        raise RuntimeError(f"the shipped maskrcnn does not fit this trunk: missing {missing}, "
                           f"unexpected {unexpected}")
    return read_manifest(checkpoint_dir())["maskrcnn"]["sha256"]


def load_keypointrcnn(*, directory: Path | None = None,
                      device: str | torch.device = "cpu") -> MaskRCNN:
    """The shipped joint model (``data/checkpoints/keypointrcnn.pt``, sha256-checked), eval mode.

    ``directory`` loads a training run instead (``runs/keypointrcnn``), with the same check.
    """
    from coursekit.checkpoints import load_pretrained

    checkpoint = load_pretrained("keypointrcnn", directory=directory)
    model = build_keypoint_rcnn(**checkpoint["config"])
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()


def train_keypointrcnn(out_dir: str | os.PathLike | None, seed: int,
                       quick: bool) -> dict[str, float]:
    """Train the joint model into a run folder (``RECIPE``); return its held-out metrics.

    Writes ``<run>/keypointrcnn.pt`` and its ``manifest.json`` entry (``<run>``: ``out_dir``
    or ``./runs/keypointrcnn``; resumable while training). ``quick=True``: 3 steps of 2
    scenes, evaluated on 4 held-out scenes (a smoke test, marked ``quick``). The full run
    evaluates on 200 held-out scenes: ``kp_ap``, ``kp_ap50``, ``kp_ap75`` (OKS), ``mask_ap*``,
    ``box_ap*``, and the same from pycocotools as ``coco_*``.
    """
    from coursekit.data.shapesworld import render_batch
    from coursekit.device import pick_device
    from coursekit.pose.evaluate import evaluate_keypointrcnn
    from coursekit.seed import seed_everything
    from coursekit.train import fit, process_rank, recipe_key, run_dir_for, save_run, state_path_for

    name = "keypointrcnn"
    run_dir = run_dir_for(name, out_dir, quick)
    steps, batch_size = (3, 2) if quick else (RECIPE["steps"], RECIPE["batch_size"])
    seed_everything(seed)
    device = pick_device()
    model = build_keypoint_rcnn()
    init = _init_from_maskrcnn(model) if RECIPE["init"] == "maskrcnn" else None
    model.to(device)
    thing_ids, size = model.thing_ids, RECIPE["size"]

    def batch_fn(step: int) -> tuple[Tensor, list[dict[str, Tensor]]]:
        seeds = list(range(step * batch_size, (step + 1) * batch_size))
        scenes = render_batch(seeds, size=size, p_crowd=0.0, p_person=RECIPE["p_person"])
        coin = torch.Generator().manual_seed(seed * 1_000_003 + step)
        flip = torch.rand(batch_size, generator=coin) < RECIPE["flip"]
        return keypoint_targets_from_scenes(scenes, thing_ids, device, flip)

    def loss_fn(net: nn.Module, batch: tuple[Tensor, list[dict[str, Tensor]]]) -> Tensor:
        losses = net(*batch)
        return sum(losses.values())  # type: ignore[return-value]

    run_id = recipe_key(RECIPE, KEYPOINT_CONFIG, steps, batch_size)
    state = state_path_for(run_dir, name, seed, run_id)  # resume a stopped run
    start = time.perf_counter()
    history = fit(model, batch_fn, loss_fn, steps=steps, lr=RECIPE["lr"],
                  weight_decay=RECIPE["weight_decay"], warmup=min(RECIPE["warmup"], steps // 10),
                  state_path=None if quick else state, save_every=50,
                  desc=f"train {name}", progress=False if quick else None)
    seconds = time.perf_counter() - start
    eval_seeds = range(HELD_OUT_START, HELD_OUT_START + (4 if quick else 200))
    metrics = evaluate_keypointrcnn(model, eval_seeds, size=size)
    weights = {k: v.detach().cpu().float() if v.is_floating_point() else v.cpu()
               for k, v in model.state_dict().items()}
    checkpoint = {
        "model": weights,
        "config": dict(model.config),
        "history": {**history, "train_seconds": seconds, "steps": steps,
                    "batch_size": batch_size, "recipe": dict(RECIPE),
                    "init_maskrcnn_sha256": init or ""},
        "metrics": {**metrics, "parameters": count_parameters(model, trainable_only=True)},
    }
    save_run(name, checkpoint, out_dir=run_dir, seed=seed, quick=quick, metrics=metrics)
    if process_rank() == 0:
        state.unlink(missing_ok=True)
    return metrics
