"""Does a small learned model earn its place next to the rules? The experiment, reproducible.

The model: logistic regression (pure Python, AdaGrad, L2) over binary word
unigrams and bigrams of the normalised text, trained on development data
only (the deepset development split and ``direct_dev.jsonl``). It joins the
rules as one more noisy-OR signal, ``alpha * max(0, (p - gate) / (1 - gate))``,
so only confident predictions count. Settings (``l2=0.01, alpha=0.8,
gate=0.8``) were chosen by 5-fold cross-validation on development data.

The decision rule, fixed before the held-out run: keep the model if it raises
the mean of the two held-out balanced accuracies (ours and deepset's) *and*
keeps false positives on our held-out benign messages at or under 5%.

Result (2026-11-24, final rules, see docs/security.md): deepset
83.1% -> 94.8%, ours 93.2% -> 93.0%, false positives on our benign
look-alikes 2.5% -> 6.7%. It fails the second condition, so the detector
ships without it. Run::

    .venv/bin/python bench/injection/model_experiment.py
"""

from __future__ import annotations

import math
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from guard import CORPUS, load
from injection.public import deepset
from tether.controls.guards import InjectionDetector, combine, normalize

_TOKEN = re.compile(r"\w+")
L2, ALPHA, GATE = 0.01, 0.8, 0.8


def features(text: str) -> set[str]:
    words = _TOKEN.findall(normalize(text)[0].lower())
    return set(words) | {f"{a} {b}" for a, b in itertools.pairwise(words)}


def fit(xs: list[set[str]], ys: list[int], epochs: int = 30) -> tuple[dict[str, float], float]:
    weights: dict[str, float] = {}
    squares: dict[str, float] = {}
    bias, bias_square = 0.0, 1e-8
    order = list(range(len(xs)))
    rng = random.Random(0)
    for _ in range(epochs):
        rng.shuffle(order)
        for i in order:
            g = probability(weights, bias, xs[i]) - ys[i]
            for f in xs[i]:
                gf = g + L2 * weights.get(f, 0.0)
                squares[f] = squares.get(f, 1e-8) + gf * gf
                weights[f] = weights.get(f, 0.0) - 0.5 * gf / math.sqrt(squares[f])
            bias_square += g * g
            bias -= 0.5 * g / math.sqrt(bias_square)
    return weights, bias


def probability(weights: dict[str, float], bias: float, x: set[str]) -> float:
    z = bias + sum(weights.get(f, 0.0) for f in x)
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def balanced(scores: list[float], labels: list[int], threshold: float = 0.5) -> tuple[float, float]:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    tpr = sum(s >= threshold for s in pos) / len(pos)
    fpr = sum(s >= threshold for s in neg) / len(neg)
    return (tpr + 1 - fpr) / 2, fpr


def main() -> None:
    train = deepset("dev") + load(CORPUS / "direct_dev.jsonl")
    if len(train) < 300:
        raise SystemExit("needs ../shared/data/injection/deepset_train.jsonl")
    weights, bias = fit([features(r["text"]) for r in train], [r["label"] for r in train])
    detector = InjectionDetector()
    print(f"{len(weights)} features; rules alone vs rules + model (balanced accuracy, FPR)")
    for name, rows in (
        ("ours, held-out", load(CORPUS / "direct_heldout.jsonl")),
        ("deepset, held-out", deepset("heldout")),
    ):
        labels = [r["label"] for r in rows]
        rules = [detector.scan(r["text"]).score for r in rows]
        model = [probability(weights, bias, features(r["text"])) for r in rows]
        both = [
            combine((s, ALPHA * max(0.0, (p - GATE) / (1 - GATE))))
            for s, p in zip(rules, model, strict=True)
        ]
        for label, scores in (("rules", rules), ("model", model), ("rules+model", both)):
            acc, fpr = balanced(scores, labels)
            print(f"  {name:18} {label:12} {acc:.1%}  FPR {fpr:.1%}")


if __name__ == "__main__":
    main()
