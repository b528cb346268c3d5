"""Train the tiny SAM on ShapesWorld, ambiguity-aware and interactive; load the shipped one.

The recipe of Kirillov et al. (2023, appendix A), at course size:

* each step renders ``batch_size`` scenes; the image encoder runs **once** per image and
  the light decoder answers ``prompts_per_image`` prompts on each embedding (half a click,
  half a box, ``data.sample_prompts``); an ambiguous click (a person's part, one circle
  of a crowd) trains on the part or the whole, drawn at random;
* round 1: a single click gives 3 masks, and only the best of them (lowest
  ``20 · focal + dice``) is trained (``sam_loss``); a box gives one mask (output token 0);
  the loss is taken at the decoder's resolution (4× the embedding grid) against the
  fraction of each cell the full-resolution target covers;
* rounds 2..``rounds``: a new click sampled in the error region of the previous mask
  (foreground where it missed, background where it spilled), the previous low-resolution
  logits as the mask prompt, one output mask;
* the IoU head regresses the real IoU of every output mask (MSE), every round;
* from scratch (SAM starts from an MAE-pretrained encoder), the focal weight ramps from 1
  to SAM's 20 over the first ``focal_ramp`` of the steps (``focal_weight_at``);
* ``match_answers`` (ours, on as shipped): an ambiguous first click trains on both its
  answers, each matched to its own output (``sam_loss(other_masks=...)``); against the
  model without it (README: best of 3 0.705 -> 0.733, first click 0.667 -> 0.675, the IoU
  head's pick 0.758 -> 0.652, at 3000 steps);
* ``steps`` 6000: the model underfits (at 3000 steps it scored 0.771 on training scenes, far
  from perfect and not far above 0.733 on held-out ones), and doubling the steps raised
  best of 3 0.733 -> 0.786, the first click 0.675 -> 0.743 and the IoU head's pick
  0.652 -> 0.753 (103 min on 2 cores);
* ``restart_steps`` 4000 (ours): a warm restart after the 6000 steps, a second cosine cycle
  (fresh AdamW, warm-up to ``restart_lr`` 1e-3, SAM's focal weight 20) on new scenes, from
  the first cycle's weights rounded to float16 as they ship; it raised best of 3
  0.786 -> 0.825, the first click 0.743 -> 0.794, the pick 0.753 -> 0.775, persons
  0.652 -> 0.713 (64 more minutes on 2 cores).

    coursekit train sam            # -> runs/sam/sam.pt
    coursekit install-checkpoint runs/sam
    model = load_sam()

The checkpoint keeps the weights in float16 (half the bytes; the metrics recorded are
those of the rounded weights). Tested in tests/sam/test_train.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from coursekit.sam.data import PromptBatch, error_region_click
from coursekit.sam.loss import sam_loss
from coursekit.sam.sam import Sam, build_sam_tiny
from coursekit.upsampling import bilinear_upsample
from coursekit.validators import count_parameters

__all__ = ["HELD_OUT_START", "RECIPE", "SAM_CONFIG", "focal_weight_at", "interactive_loss",
           "load_sam", "train_sam"]

HELD_OUT_START = 3_000_000  # as the other lessons': never a training seed
SAM_CONFIG: dict[str, Any] = {  # 64 px, patch 4: a 16 × 16 embedding, 64 × 64 masks
    "img_size": 64, "patch_size": 4, "encoder_embed_dim": 96, "encoder_depth": 4,
    "encoder_global_attn_indexes": (1, 3),
}
RECIPE: dict[str, Any] = {
    "steps": 6000, "batch_size": 8, "prompts_per_image": 10, "rounds": 3, "lr": 2e-3,
    "weight_decay": 0.01, "warmup": 30, "size": 64, "p_stuff": 0.2, "p_small": 0.5,
    "box_noise": 0.05, "focal_ramp": 0.25, "match_answers": True,
    "restart_steps": 4000, "restart_lr": 1e-3, "restart_warmup": 100,
}  # fmt: skip
_RESTART_KEYS = ("restart_steps", "restart_lr", "restart_warmup")


def focal_weight_at(step: int, steps: int, ramp: float = RECIPE["focal_ramp"]) -> float:
    """The focal weight of step ``step``: 1 at the start, linearly up to SAM's 20 at
    ``ramp · steps``, then 20. From scratch, 20 : 1 from the first step settles on empty
    masks (cheap under the focal loss) for hundreds of steps; 1 : 1 first escapes it."""
    if ramp <= 0:
        return 20.0
    return 1.0 + 19.0 * min(1.0, step / (ramp * steps))


def interactive_loss(model: Sam, images: Tensor, prompts: PromptBatch, *, rounds: int,
                     generator: torch.Generator, focal_weight: float = 20.0,
                     match_answers: bool = False) -> Tensor:
    """The loss of one batch: encoder once, then ``rounds`` decoder rounds per prompt.

    ``images``: Tensor[B, 3, S, S]; ``prompts``: K = len(prompts.points) / B per image, the
    first half of each image's prompts start with a click, the second half with a box.
    Returns the mean over rounds and both halves of ``sam_loss`` (mask + IoU terms), with
    ``focal_weight`` : 1 for focal : dice (SAM's 20 : 1 by default). ``match_answers``: an
    ambiguous first click trains on both its answers, matched to two different outputs
    (``sam_loss(other_masks=...)``), instead of on the one drawn.
    """
    B, S = images.shape[0], model.img_size
    k = prompts.points.shape[0] // B
    device = images.device
    emb, pix = model.encode(model.preprocess(images))  # (B, D, g, g), once per image
    g = emb.shape[-1]
    emb = emb.repeat_interleave(k, dim=0)  # (B·K, D, g, g)
    if pix is not None:  # a pixel skip's features (B, D/8, 4g, 4g), one per prompt too
        pix = pix.repeat_interleave(k, dim=0)
    pe = model.prompt_encoder.get_dense_pe()
    use_box = (torch.arange(B * k, device=device) % k) >= k // 2
    total, terms = images.new_zeros(()), 0
    for box_first in (False, True):
        sel = (use_box == box_first).nonzero().flatten()
        if len(sel) == 0:
            continue
        target = prompts.targets[sel].to(device)  # (n, S, S)
        soft = _soft(target, S // (4 * g), images.dtype)  # (n, 4g, 4g)
        other = None
        if match_answers and not box_first:
            other = _soft(prompts.others[sel].to(device), S // (4 * g), images.dtype)
        boxes = prompts.boxes[sel].to(device) if box_first else None
        coords = labels = mask_in = None
        if not box_first:
            coords = prompts.points[sel].to(device)[:, None]  # (n, 1, 2)
            labels = torch.ones(len(sel), 1, dtype=torch.long, device=device)
        for r in range(rounds):
            multimask = r == 0 and not box_first
            points = None if coords is None else (coords, labels)
            sparse, dense = model.prompt_encoder(points, boxes, mask_in)
            skip = () if pix is None else (pix[sel],)
            low, iou = model.mask_decoder(emb[sel], pe, sparse, dense, multimask,
                                          *skip)  # (n, C, 4g, 4g)
            out = sam_loss(low, iou, soft, focal_weight=focal_weight,  # soft targets
                           other_masks=other if multimask else None)
            total, terms = total + out.loss, terms + 1
            if r + 1 == rounds:
                break
            with torch.no_grad():
                pick = torch.arange(len(sel), device=device)
                mask_in = low[pick, out.best][:, None].detach()  # (n, 1, 4g, 4g)
                pred = bilinear_upsample(mask_in, size=(S, S))[:, 0] > 0  # (n, S, S)
                pt, lb = error_region_click(pred, target, generator)
            coords = pt[:, None] if coords is None else torch.cat([coords, pt[:, None]], 1)
            labels = lb[:, None] if labels is None else torch.cat([labels, lb[:, None]], 1)
    return total / terms


def _soft(masks: Tensor, cell: int, dtype: torch.dtype) -> Tensor:
    """Bool Tensor[n, S, S] -> the fraction of each ``cell`` x ``cell`` block covered."""
    return F.avg_pool2d(masks[:, None].to(dtype), cell)[:, 0]


def _round_to_float16(model: nn.Module) -> dict[str, Tensor]:
    """Round ``model``'s floating weights to float16 in place (they stay float32 tensors);
    return the float16 state dict, on the CPU, that the checkpoint keeps."""
    weights = {k: v.detach().cpu().half() if v.is_floating_point() else v.cpu()
               for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in weights.items()})
    return weights


def load_sam(*, directory: Path | None = None, device: str | torch.device = "cpu") -> Sam:
    """The shipped tiny SAM (``data/checkpoints/sam.pt``, sha256-checked), float32, eval mode.

    ``directory`` loads a training run instead (``runs/sam``), with the same check.
    """
    from coursekit.checkpoints import load_pretrained

    checkpoint = load_pretrained("sam", directory=directory)
    model = build_sam_tiny(**checkpoint["config"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in checkpoint["model"].items()})
    return model.to(device).eval()


def train_sam(out_dir: str | os.PathLike | None, seed: int, quick: bool) -> dict[str, float]:
    """Train the tiny SAM into a run folder (``RECIPE``); return its held-out metrics.

    Writes ``<run>/sam.pt`` (float16 weights) and its manifest entry (``<run>``: ``out_dir``
    or ``./runs/sam``; resumable while training). ``quick=True``: 3 steps of 2 scenes,
    evaluated on 2 held-out scenes (a smoke test, marked ``quick``). The full run evaluates
    on 48 held-out scenes (``evaluate.evaluate_sam``).
    """
    from coursekit.data.shapesworld import render_batch
    from coursekit.device import pick_device
    from coursekit.sam.data import crowd_circle_ids, sample_prompts, scene_segments
    from coursekit.sam.evaluate import evaluate_sam
    from coursekit.seed import seed_everything
    from coursekit.train import fit, process_rank, recipe_key, run_dir_for, save_run, state_path_for

    name = "sam"
    run_dir = run_dir_for(name, out_dir, quick)
    steps, batch_size = (3, 2) if quick else (RECIPE["steps"], RECIPE["batch_size"])
    seed_everything(seed)
    device = pick_device()
    model = build_sam_tiny(**SAM_CONFIG).to(device)
    size, k = RECIPE["size"], RECIPE["prompts_per_image"]

    def batch_fn(step: int) -> tuple[Tensor, PromptBatch, torch.Generator, float]:
        seeds = list(range(step * batch_size, (step + 1) * batch_size))
        scenes = render_batch(seeds, size=size)
        segments = scene_segments(scenes, crowd_circle_ids(seeds, size))
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        prompts = sample_prompts(segments, k, g, p_stuff=RECIPE["p_stuff"],
                                 p_small=RECIPE["p_small"], box_noise=RECIPE["box_noise"])
        return scenes.image.to(device), prompts, g, focal_weight_at(step, steps)

    def loss_fn(net: nn.Module, batch: tuple[Tensor, PromptBatch, torch.Generator, float]
                ) -> Tensor:
        images, prompts, g, fw = batch
        sam = net.module if hasattr(net, "module") else net
        return interactive_loss(sam, images, prompts, rounds=RECIPE["rounds"], generator=g,
                                focal_weight=fw,
                                match_answers=RECIPE["match_answers"])

    phase_one = {k: v for k, v in RECIPE.items() if k not in _RESTART_KEYS}
    state = state_path_for(run_dir, name, seed,  # resume a stopped run
                           recipe_key(phase_one, SAM_CONFIG, steps, batch_size))
    start = time.perf_counter()
    history = fit(model, batch_fn, loss_fn, steps=steps, lr=RECIPE["lr"],
                  weight_decay=RECIPE["weight_decay"], warmup=min(RECIPE["warmup"], steps // 10),
                  state_path=None if quick else state, save_every=50,
                  desc=f"train {name}", progress=False if quick else None)
    states = [state]
    restart = min(2, RECIPE["restart_steps"]) if quick else RECIPE["restart_steps"]
    if restart:  # phase two: a warm restart from phase one's weights as they would ship
        _round_to_float16(model)
        state2 = state_path_for(run_dir, name, seed, recipe_key(RECIPE, SAM_CONFIG, steps,
                                                                batch_size, "restart"))
        states.append(state2)
        more = fit(model, lambda step, offset=steps: batch_fn(offset + step), loss_fn,
                   steps=restart, lr=RECIPE["restart_lr"], weight_decay=RECIPE["weight_decay"],
                   warmup=min(RECIPE["restart_warmup"], restart // 10),
                   state_path=None if quick else state2, save_every=50,
                   desc=f"train {name} (restart)", progress=False if quick else None)
        history = {"step": history["step"] + [steps + s for s in more["step"]],
                   "loss": history["loss"] + more["loss"]}
        steps += restart
    seconds = time.perf_counter() - start
    weights = _round_to_float16(model)  # evaluate what ships
    eval_seeds = range(HELD_OUT_START, HELD_OUT_START + (2 if quick else 48))
    metrics = evaluate_sam(model.cpu().eval(), eval_seeds, size=size)
    checkpoint = {
        "model": weights,
        "config": dict(SAM_CONFIG),
        "history": {**history, "train_seconds": seconds, "steps": steps,
                    "batch_size": batch_size, "recipe": dict(RECIPE)},
        "metrics": {**metrics, "parameters": count_parameters(model, trainable_only=True)},
    }
    save_run(name, checkpoint, out_dir=run_dir, seed=seed, quick=quick,
             metrics={**metrics, "train_seconds": round(seconds, 1)})
    if process_rank() == 0:
        for path in states:
            path.unlink(missing_ok=True)
    return metrics
