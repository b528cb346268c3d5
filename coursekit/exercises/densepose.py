"""Graders for the dense-correspondence exercises (lesson 08).

* ``check_cse_loss(fn)``: continuous surface embeddings' loss, written from its formula,
  compared with ``coursekit.densepose.cse_loss``.
* ``check_uv_loss(fn)``: "find the bug" — a U, V loss that supervises the charts of all
  parts; the fixed one uses only the true part's channel (``densepose_losses``' ``uv``).
* ``check_chance_prediction(fn)``: "predict before you run" — the chance level of the
  correspondence accuracy on a template with four times as many vertices, measured with
  ``chance_accuracy``.
* ``check_hflip(fn)``: "find the bug" — carrying the maps of the mirror image back; a
  classmate's version forgets that left and right parts swap; compared with
  ``coursekit.densepose.uv_head.hflip_maps``.

Each ``check_*(fn)`` prints one verdict line (✅ / ❌ with a hint) and returns whether it
passed.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from coursekit.densepose.cse import body_template, chance_accuracy, cse_loss
from coursekit.exercises.verdict import report, run_student
from coursekit.validators import describe

__all__ = ["FINE_SPACING", "check_chance_prediction", "check_cse_loss", "check_hflip",
           "check_uv_loss", "measure_template_chance", "reference_uv_loss"]

RADIUS = 0.06
FINE_SPACING = 0.015  # half the shipped template's spacing: 4 times as many vertices


def _scalar(result: object) -> float | None:
    if isinstance(result, Tensor) and result.numel() == 1 and result.is_floating_point():
        return float(result.detach())
    return None


def _loss_cases() -> list[tuple[Tensor, Tensor, Tensor, float]]:
    g = torch.Generator().manual_seed(8)
    cases = [(torch.tensor([[0.0, 0.0]], dtype=torch.float64),
              torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64),
              torch.tensor([1]), 1.0)]
    for n, v, d, t in [(6, 5, 3, 1.0), (9, 12, 4, 0.3)]:
        cases.append((torch.randn(n, d, generator=g, dtype=torch.float64),
                      torch.randn(v, d, generator=g, dtype=torch.float64),
                      torch.randint(0, v, (n,), generator=g), t))
    return cases


def check_cse_loss(fn: Callable) -> bool:
    """Grade ``fn(pixel_embeddings [N, D], vertex_embeddings [V, D], target_vertices [N],
    temperature) -> scalar``: the mean cross-entropy of ``softmax(-||e - v||^2 / T)``."""
    for e, v, t, temp in _loss_cases():
        expected = cse_loss(e, v, t, temp).item()
        result, error = run_student(fn, e.clone(), v.clone(), t.clone(), temp)
        if error:
            return report(False, "cse_loss", error)
        got = _scalar(result)
        if got is None:
            return report(False, f"cse_loss should return a scalar float tensor, got "
                                 f"{describe(result)}", "F.cross_entropy returns one")
        if abs(got - expected) <= 1e-6 * max(1.0, abs(expected)):
            continue
        d2 = torch.cdist(e, v) ** 2
        wrong = {
            "+": F.cross_entropy(d2 / temp, t).item(),
            "norm": F.cross_entropy(-torch.cdist(e, v) / temp, t).item(),
            "times": F.cross_entropy(-d2 * temp, t).item(),
            "sum": F.cross_entropy(-d2 / temp, t, reduction="sum").item(),
        }
        hints = {
            "+": "near vertices must score higher: the logits are minus the squared distances",
            "norm": "use the squared distance ||e - v||^2, not the distance",
            "times": "divide the logits by the temperature (a small temperature sharpens)",
            "sum": "average over the points, do not sum",
        }
        hint = next((hints[k] for k, w in wrong.items() if abs(got - w) <= 1e-6 * max(1, abs(w))),
                    "logits[n, k] = -||e_n - v_k||^2 / temperature, then the mean "
                    "cross-entropy against target_vertices")
        return report(False, f"cse_loss: expected {expected:.6f}, got {got:.6f}", hint)
    return report(True, "cse_loss matches coursekit.densepose.cse_loss on 3 cases")


def reference_uv_loss(u_read: Tensor, v_read: Tensor, parts: Tensor, u_true: Tensor,
                      v_true: Tensor) -> Tensor:
    """The U, V loss of ``densepose_losses``: smooth-L1 (beta 0.1) on the true part's channel."""
    rows = torch.arange(len(parts))
    return (F.smooth_l1_loss(u_read[rows, parts], u_true, beta=0.1)
            + F.smooth_l1_loss(v_read[rows, parts], v_true, beta=0.1))


def _uv_case(seed: int):
    g = torch.Generator().manual_seed(seed)
    n = 12
    u_read = torch.rand(n, 11, generator=g, dtype=torch.float64)
    v_read = torch.rand(n, 11, generator=g, dtype=torch.float64)
    parts = torch.randint(1, 11, (n,), generator=g)
    return u_read, v_read, parts, torch.rand(n, generator=g, dtype=torch.float64), torch.rand(
        n, generator=g, dtype=torch.float64)


def check_uv_loss(fn: Callable) -> bool:
    """Grade ``fn(u_read [n, P + 1], v_read [n, P + 1], parts [n], u_true [n], v_true [n])``:
    U and V read at n annotated points for every part's chart, the points' true parts, and
    their true U, V -> the loss (smooth-L1, beta 0.1, mean, U term + V term)."""
    for seed in (0, 1):
        args = _uv_case(seed)
        expected = reference_uv_loss(*args).item()
        result, error = run_student(fn, *(a.clone() for a in args))
        if error:
            return report(False, "uv loss", error)
        got = _scalar(result)
        if got is None:
            return report(False, f"the loss should be a scalar float tensor, got "
                                 f"{describe(result)}", "return the sum of the U and V terms")
        if abs(got - expected) <= 1e-9:
            continue
        u_read, v_read, parts, u_true, v_true = args
        all_parts = (F.smooth_l1_loss(u_read, u_true[:, None].expand_as(u_read), beta=0.1)
                     + F.smooth_l1_loss(v_read, v_true[:, None].expand_as(v_read), beta=0.1))
        rows = torch.arange(len(parts))
        no_beta = (F.smooth_l1_loss(u_read[rows, parts], u_true)
                   + F.smooth_l1_loss(v_read[rows, parts], v_true))
        if abs(got - all_parts.item()) <= 1e-9:
            hint = ("that is still the classmate's loss: every part's chart is pulled to this "
                    "point's U, V")
        elif abs(got - no_beta.item()) <= 1e-9:
            hint = "keep beta=0.1 in smooth_l1_loss, as the classmate had it"
        else:
            hint = ("read each point's U and V from the channel of its own part "
                    "(index the rows with their part), then smooth-L1 as before")
        return report(False, f"uv loss: expected {expected:.6f}, got {got:.6f}", hint)
    return report(True, "only the true part's chart is supervised at each point")


def measure_template_chance(spacing: float, radius: float = RADIUS) -> float:
    """Chance accuracy within ``radius`` of a uniformly drawn vertex, for truths spread
    evenly over the surface (every vertex of ``body_template(spacing)`` once)."""
    template = body_template(spacing)
    return chance_accuracy(torch.arange(len(template)), template.distances(), radius)


def check_chance_prediction(fn: Callable) -> bool:
    """Grade a prediction ``fn() -> float``: the chance accuracy (radius 0.06) with the
    template at ``FINE_SPACING`` (4 times as many vertices); within 20 % of the measurement
    passes."""
    got, error = run_student(fn)
    if error is not None:
        return report(False, f"your prediction: {error}", "return a number between 0 and 1")
    if isinstance(got, bool) or not isinstance(got, numbers.Real):
        return report(False, f"the prediction should be a number, got {describe(got)}",
                      "a fraction, e.g. 0.5")
    got = float(got)
    measured = measure_template_chance(FINE_SPACING)
    coarse = measure_template_chance(0.03)
    what = f"you predicted {got:.4f}, measured {measured:.4f}"
    if abs(got - measured) <= 0.2 * measured:
        return report(True, what)
    if abs(got - coarse / 4) <= 0.2 * coarse / 4:
        hint = ("4 times as many vertices to guess from, but also 4 times as many inside the "
                "radius: what fraction of the surface does the disc cover?")
    elif abs(got - coarse * 4) <= 0.2 * coarse * 4:
        hint = "a random guess does not get better with more vertices"
    else:
        hint = "chance = the share of the body's surface within the radius of the truth"
    return report(False, what, hint)


def _hflip_case(seed: int) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(2, c, 3, 3, generator=g, dtype=torch.float64)
            for k, c in (("coarse", 2), ("fine", 11), ("u", 11), ("v", 11))}


def check_hflip(fn: Callable) -> bool:
    """Grade ``fn(outputs) -> dict``: the head's ``{"coarse", "fine", "u", "v"}`` maps
    (Tensor[R, C, M, M]) of the mirror image, carried back onto the original image as
    ``hflip_maps`` does (columns reversed, left and right parts swapped, V -> 1 - V)."""
    from coursekit.densepose.parts import PART_SYMMETRIES
    from coursekit.densepose.uv_head import hflip_maps

    for seed in (0, 1):
        maps = _hflip_case(seed)
        expected = hflip_maps(maps)
        result, error = run_student(fn, {k: v.clone() for k, v in maps.items()})
        if error:
            return report(False, "hflip", error)
        if not isinstance(result, dict) or not all(
                isinstance(result.get(k), Tensor) for k in expected):
            return report(False, f"return a dict with the maps {sorted(expected)}, got "
                                 f"{describe(result)}", "one Tensor per map, shaped as given")
        shapes = [k for k in expected if result[k].shape != expected[k].shape]
        if shapes:
            return report(False, f"hflip: {', '.join(shapes)} should keep the shape "
                                 f"{tuple(maps[shapes[0]].shape)}, got "
                                 f"{tuple(result[shapes[0]].shape)}",
                          "flipping and reordering channels never changes a shape")
        wrong = [k for k in expected
                 if not torch.allclose(result[k].to(torch.float64), expected[k], atol=1e-9)]
        if not wrong:
            continue
        swap = list(PART_SYMMETRIES)
        if all(torch.allclose(result[k].to(torch.float64), expected[k][:, swap], atol=1e-9)
               for k in ("fine", "u", "v") if k in wrong) and "coarse" not in wrong:
            hint = ("that is still the classmate's version: the mirrored left arm is the right "
                    "arm's channel of the mirror; take channel k from PART_SYMMETRIES[k]")
        elif "v" in wrong and torch.allclose(result["v"].to(torch.float64), 1 - expected["v"],
                                             atol=1e-9):
            hint = "V runs across a limb and the mirror swaps its sides: V becomes 1 - V"
        elif "coarse" in wrong and torch.allclose(result["coarse"].to(torch.float64),
                                                   maps["coarse"].flip(-2), atol=1e-9):
            hint = "reverse the columns (the last dimension), not the rows"
        else:
            hint = ("reverse the columns of every map, swap the left and right part channels "
                    "of fine, u and v, then V -> 1 - V; U stays")
        return report(False, f"hflip: {', '.join(wrong)} differ from the maps carried back",
                      hint)
    return report(True, "columns reversed, left and right swapped, V -> 1 - V")
