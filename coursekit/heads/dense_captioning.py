"""Dense captioning: one more head on the RoI features that writes a sentence per box.

Lecture: *Add more heads! Dense captioning* — predict a text description for each object
(Johnson, Karpathy and Fei-Fei, DenseCap, CVPR 2016). Given the detector's box, the head
reads the RoI features and generates the caption word by word with a recurrent
network::

    RoI Align 7×7 of the box  ⊕  RoI Align 7×7 of its neighbourhood    [R, 2C, 7, 7]
        --conv 3×3 stride 2 + ReLU--> flatten --FC + ReLU-->   region code  [R, E]
    h_0 = tanh(FC(code));  for t = 1..T:
        h_t = GRU([embed(w_{t-1}), code], h_{t-1});  p(w_t) = softmax(FC(h_t))

The neighbourhood (``captions.CONTEXT``, ± 24 × ± 16 pixels around the box's centre at 64
pixels) lets the head see the thing its caption relates to ("left of a person"): DenseCap
with context (Yang et al., CVPR 2017) adds the same. Training uses **teacher forcing**:
the input at step t is the true word ``w_{t-1}`` and the loss is the cross-entropy of
every true next word (``<pad>`` ignored). Inference is **greedy decoding**: start from
``<bos>``, feed back the most probable word, stop at ``<eos>``.

``CaptionHead`` is a ``coursekit.instance.heads.RoIHead``: ``forward`` gives the region
codes, ``loss`` the teacher-forced cross-entropy against ``targets["captions"]`` (token
rows, ``captions.encode``), ``predict`` the greedy tokens ``{"captions": Tensor[D, L]}``.
``caption_accuracy`` scores decoded tokens: word accuracy (a reference word is right when
the prediction has the same word at the same position) and exact-caption accuracy.
Tested in tests/heads/test_dense_captioning.py.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coursekit.heads.captions import BOS, CONTEXT, EOS, MAX_LEN, PAD, VOCAB
from coursekit.instance.heads import RoIHead
from coursekit.instance.pooler import MultiScaleRoIAlign
from coursekit.validators import (
    positive_int,
    require_dim,
    require_floating,
    require_integer,
    shape_str,
)

__all__ = ["CaptionHead", "ContextRoIAlign", "caption_accuracy", "caption_loss",
           "majority_caption", "position_accuracy"]


class ContextRoIAlign(nn.Module):
    """RoI Align of each box and of its neighbourhood, stacked on channels: [R, 2C, S, S].

    ``ContextRoIAlign(pool, context=CONTEXT, image_size=64)``: ``pool`` a
    ``MultiScaleRoIAlign``; the neighbourhood of a box is the window of half size
    ``context`` (scaled by ``image_size / 64``) around its centre.
    """

    def __init__(self, pool: MultiScaleRoIAlign, context: tuple[float, float] = CONTEXT,
                 image_size: int = 64) -> None:
        super().__init__()
        self.pool = pool
        self.half = (float(context[0]) * image_size / 64, float(context[1]) * image_size / 64)

    def context_boxes(self, boxes: Tensor) -> Tensor:
        """Tensor[K, 4]: the neighbourhood window of each box Tensor[K, 4] (xyxy pixels)."""
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        hx, hy = self.half
        return torch.stack([cx - hx, cy - hy, cx + hx, cy + hy], 1)

    def forward(self, features: OrderedDict[str, Tensor], boxes: list[Tensor]) -> Tensor:
        own = self.pool(features, boxes)  # (R, C, S, S)
        around = self.pool(features, [self.context_boxes(b) for b in boxes])  # (R, C, S, S)
        return torch.cat([own, around], 1)  # (R, 2C, S, S)


class CaptionHead(RoIHead):
    """A GRU caption generator on RoI features (module docstring), an extra RoI head.

    ``CaptionHead(roi_pool, in_channels, roi_size=7, code=256, embed=64, hidden=256,
    vocab_size=len(VOCAB), labels=None)``: ``roi_pool`` returns Tensor[R, in_channels,
    roi_size, roi_size] (a ``ContextRoIAlign``: ``in_channels`` = 2 × the FPN's channels).
    """

    target_keys = ("captions",)

    def __init__(self, roi_pool: nn.Module, in_channels: int, roi_size: int = 7,
                 code: int = 256, embed: int = 64, hidden: int = 256,
                 vocab_size: int = len(VOCAB), labels: Sequence[int] | None = None) -> None:
        super().__init__(roi_pool, labels)  # type: ignore[arg-type]
        self.in_channels = positive_int(in_channels, "in_channels")
        self.roi_size = positive_int(roi_size, "roi_size")
        self.vocab_size = positive_int(vocab_size, "vocab_size", minimum=3)
        self.conv = nn.Conv2d(in_channels, 64, 3, stride=2, padding=1)
        side = (self.roi_size + 1) // 2
        self.fc = nn.Linear(64 * side * side, positive_int(code, "code"))
        self.init_h = nn.Linear(code, positive_int(hidden, "hidden"))
        self.embed = nn.Embedding(vocab_size, positive_int(embed, "embed"), padding_idx=PAD)
        self.gru = nn.GRU(embed + code, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, x: Tensor) -> Tensor:
        """RoI features Tensor[R, in_channels, S, S] -> region codes Tensor[R, code]."""
        expected = f"Tensor[R, {self.in_channels}, {self.roi_size}, {self.roi_size}]"
        require_dim(x, "x", 4, expected)
        if tuple(x.shape[1:]) != (self.in_channels, self.roi_size, self.roi_size):
            raise ValueError(f"x must be {expected} (RoI features), got {shape_str(x)}")
        x = F.relu(self.conv(x))  # (R, 64, S/2, S/2)
        return F.relu(self.fc(x.flatten(1)))  # (R, code)

    def logits(self, codes: Tensor, tokens: Tensor) -> Tensor:
        """Teacher forcing: next-word logits Tensor[R, L - 1, V] for token rows Tensor[R, L].

        Step t reads the true word ``tokens[:, t]`` and predicts ``tokens[:, t + 1]``.
        """
        inputs = tokens[:, :-1]  # (R, L - 1)
        steps = inputs.shape[1]
        x = torch.cat([self.embed(inputs), codes[:, None].expand(-1, steps, -1)], 2)
        h0 = torch.tanh(self.init_h(codes))[None]  # (1, R, hidden)
        y, _ = self.gru(x, h0)  # (R, L - 1, hidden)
        return self.out(y)  # (R, L - 1, V)

    @torch.no_grad()
    def generate(self, codes: Tensor, max_len: int = MAX_LEN + 1) -> Tensor:
        """Greedy decoding: int64 Tensor[R, max_len + 1] ``[<bos>, w1, ...]``.

        Each step feeds back the most probable word; ``<pad>`` after ``<eos>``.
        """
        R = codes.shape[0]
        tokens = torch.full((R, max_len + 1), PAD, dtype=torch.long, device=codes.device)
        tokens[:, 0] = BOS
        h = torch.tanh(self.init_h(codes))[None]  # (1, R, hidden)
        word = tokens[:, :1]  # (R, 1)
        done = torch.zeros(R, dtype=torch.bool, device=codes.device)
        for t in range(1, max_len + 1):
            x = torch.cat([self.embed(word), codes[:, None]], 2)  # (R, 1, embed + code)
            y, h = self.gru(x, h)
            word = self.out(y[:, 0]).argmax(1, keepdim=True)  # (R, 1) the most probable word
            tokens[:, t] = torch.where(done, PAD, word[:, 0])
            done |= word[:, 0] == EOS
            if bool(done.all()):
                break
        return tokens

    def loss(self, outputs: Tensor, proposals: list[Tensor],
             targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """``{"loss_caption": caption_loss(...)}``: teacher-forced cross-entropy."""
        tokens = torch.cat([t["captions"] for t in targets]) if targets else \
            outputs.new_zeros(0, MAX_LEN + 2, dtype=torch.long)
        return {"loss_caption": caption_loss(self.logits(outputs, tokens), tokens)}

    def predict(self, outputs: Tensor, boxes: list[Tensor],
                labels: list[Tensor]) -> dict[str, Tensor]:
        """``{"captions": int64 Tensor[D, MAX_LEN + 2]}``: greedy token rows (``decode``)."""
        return {"captions": self.generate(outputs)}


def caption_loss(logits: Tensor, tokens: Tensor) -> Tensor:
    """Mean cross-entropy of the next words: logits Tensor[R, L - 1, V], tokens Tensor[R, L].

    Target of step t is ``tokens[:, t + 1]``; ``<pad>`` targets are ignored. ``0 * sum``
    (still connected to the graph) when there is no target word.
    """
    require_floating(logits, "logits", "a floating-point Tensor[R, L - 1, V]")
    require_dim(logits, "logits", 3, "Tensor[R, L - 1, V]")
    require_integer(tokens, "tokens", "an int64 Tensor[R, L] of VOCAB indices")
    require_dim(tokens, "tokens", 2, "an int64 Tensor[R, L]")
    if tokens.shape[0] != logits.shape[0] or tokens.shape[1] != logits.shape[1] + 1:
        raise ValueError(f"tokens must be Tensor[R, L] for logits Tensor[R, L - 1, V], got "
                         f"{shape_str(tokens)} and {shape_str(logits)}")
    target = tokens[:, 1:]
    if not bool((target != PAD).any()):
        return logits.sum() * 0
    acc = torch.promote_types(logits.dtype, torch.float32)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).to(acc), target.reshape(-1),
                           ignore_index=PAD).to(logits.dtype)


def _check_tokens(tokens: object, name: str) -> Tensor:
    """Token rows: an integer Tensor[K, L] of ``VOCAB`` indices."""
    require_integer(tokens, name, "an int64 Tensor[K, L] of VOCAB indices")
    require_dim(tokens, name, 2, "an int64 Tensor[K, L] of VOCAB indices")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= len(VOCAB)):
        raise ValueError(f"{name} must be VOCAB indices in [0, {len(VOCAB)}), got values from "
                         f"{int(tokens.min())} to {int(tokens.max())}")
    return tokens


def _words(tokens: Tensor) -> list[list[int]]:
    out = []
    for row in tokens.tolist():
        words = []
        for t in row:
            if t == EOS:
                break
            if t not in (PAD, BOS):
                words.append(t)
        out.append(words)
    return out


def caption_accuracy(predicted: Tensor, reference: Tensor) -> dict[str, float]:
    """Word and exact-caption accuracy of token rows (both int64 Tensor[K, L_*]).

    ``word``: the fraction of reference words (``<eos>`` excluded) that the prediction has
    at the same position; ``exact``: the fraction of captions predicted word for word
    (same length too). Returns ``{"word", "exact", "n"}`` (``n`` captions).
    """
    for name, t in (("predicted", predicted), ("reference", reference)):
        _check_tokens(t, name)
    if predicted.shape[0] != reference.shape[0]:
        raise ValueError(f"predicted and reference must have one row per caption, got "
                         f"{shape_str(predicted)} and {shape_str(reference)}")
    right = total = exact = 0
    for p, r in zip(_words(predicted), _words(reference), strict=True):
        right += sum(a == b for a, b in zip(p, r, strict=False))
        total += len(r)
        exact += p == r
    n = len(reference)
    return {"word": right / max(1, total), "exact": exact / max(1, n), "n": float(n)}


def position_accuracy(predicted: Tensor, reference: Tensor) -> list[tuple[int, float, int]]:
    """Word accuracy per word position: ``[(position, accuracy, count), ...]`` from 1.

    Position ``i`` counts the reference captions with an ``i``-th word, and how many of
    them the prediction matches there (ShapesWorld captions: 1 size, 2 colour,
    3 category, 4 ``left`` / ``right`` / ``alone``, 7 the neighbour's category).
    """
    caption_accuracy(predicted, reference)  # the same checks
    right: dict[int, int] = {}
    count: dict[int, int] = {}
    for p, r in zip(_words(predicted), _words(reference), strict=True):
        for i, word in enumerate(r, start=1):
            count[i] = count.get(i, 0) + 1
            right[i] = right.get(i, 0) + (i <= len(p) and p[i - 1] == word)
    return [(i, right[i] / count[i], count[i]) for i in sorted(count)]


def majority_caption(reference: Tensor) -> Tensor:
    """The blind baseline: at each position the most frequent word of ``reference`` rows.

    Tensor[1, L] of ``reference``'s dtype (``<bos>``, then per position the commonest token,
    ties to the smallest token id, ``<pad>`` after the first ``<eos>``): what a head that
    ignores the image can best say word by word.
    """
    _check_tokens(reference, "reference")
    if len(reference) == 0:
        raise ValueError(f"reference must hold at least one caption, got {shape_str(reference)}")
    # count each token per position; argmax takes the first maximum: ties go to the smallest
    # token id on every device (torch.mode leaves its tie rule unspecified)
    counts = torch.zeros(reference.shape[1], len(VOCAB), dtype=torch.int64,
                         device=reference.device)
    index = reference.T.long()  # (L, K)
    counts.scatter_add_(1, index, torch.ones_like(index))  # (L, V)
    row = counts.argmax(1).to(reference.dtype)
    row[:1] = BOS  # (no column: Tensor[1, 0])
    ends = torch.where(row == EOS)[0]
    if len(ends):
        row[int(ends[0]) + 1:] = PAD
    return row[None]
