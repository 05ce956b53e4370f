"""Transformer-XL: segment recurrence with a detached memory and relative positions.

Dai et al. 2019, "Transformer-XL: Attentive Language Models Beyond a Fixed-Length Context".
The sequence is cut into segments of ``segment_len`` tokens processed in order; each layer of
segment ``s`` attends to its own segment and to the cached states of the ``mem_len``
positions before it (no gradient flows into the cache), with the relative scores
``q.k + q.W_R R_{i-j} + u.k + v.W_R R_{i-j}``. The maths and the one-pass form that equals the
segment loop live in ``models.segments``.

Departures: attention within a segment is bidirectional (a classifier, not a language
model); the backbone keeps the task's absolute positions (every method shares it) and the
relative terms come on top; the encoder pools by the mean over real tokens (a CLS token at
position 0 would only ever see the first segment). Cost ``O(N * (L + m))``.
"""

from __future__ import annotations

from models.base import register
from models.segments import SegmentRecurrentAttention


@register("xl")
class XLAttention(SegmentRecurrentAttention):
    """Transformer-XL attention over ``[stop_grad(memory); segment]``.

    Options:
        segment_len: tokens per segment ``L`` (default 256).
        mem_len: cached positions before each segment ``m`` (default 256; 0 = none).

    With one segment covering the input (and so an empty memory) this is full bidirectional
    attention plus the relative terms; with ``W_R = u = v = 0`` it is full softmax attention.
    """

    exact = False
    complexity = "n*(s+m)"
    test_options = {"segment_len": 16, "mem_len": 16}
