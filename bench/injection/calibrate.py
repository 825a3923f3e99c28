"""Calibrate the detector on development data only: rule weights and thresholds.

For each rule, counts the development texts it matches (direct messages and
the deepset development split as user input; our tool outputs, the
look-alike tool outputs and the BIPIA development split as tool output),
attacks and benign apart, and prints the weight the evidence suggests: the
rule's precision shrunk toward its current weight,
``(tp + k * w) / (tp + fp + k)`` with ``k = 4``. Tool-only rules are counted
on tool output only. Then it prints the user threshold that maximises
balanced accuracy on the direct and deepset development sets, and the lowest
tool threshold that keeps false positives on benign development tool output
(ours, look-alikes, clean BIPIA carriers) at or under 1%.

The held-out files are never read here. Run::

    .venv/bin/python bench/injection/calibrate.py
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guard import CORPUS, ensure_corpus, load
from injection.public import bipia, deepset
from tether.controls.guards import RULES, InjectionDetector, decode, normalize

PRIOR = 4.0


def matched(text: str, *, tool: bool) -> set[str]:
    """Names of the rules that match the text, plain or decoded (no prefilter, no windows)."""
    readings = [normalize(text)[0].lower()]
    readings += [normalize(v.text)[0].lower() for v in decode(text)]
    rules = [r for r in RULES if tool or not r.tool_only]
    return {r.name for r in rules for low in readings if r.pattern.search(low)}


def main() -> None:
    ensure_corpus()
    direct = load(CORPUS / "direct_dev.jsonl") + deepset("dev")
    tool = load(CORPUS / "tool_dev.jsonl") + load(CORPUS / "lookalike_dev.jsonl") + bipia("dev")
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    for rows, is_tool in ((direct, False), (tool, True)):
        for row in rows:
            for name in matched(row["text"], tool=is_tool):
                (tp if row["label"] else fp)[name] += 1
    print(f"{'rule':34} {'attacks':>7} {'benign':>6} {'weight':>6} {'suggest':>7}")
    for rule in RULES:
        t, f = tp[rule.name], fp[rule.name]
        suggest = (t + PRIOR * rule.weight) / (t + f + PRIOR)
        flag = "  <-" if abs(suggest - rule.weight) >= 0.1 else ""
        print(f"{rule.name:34} {t:7} {f:6} {rule.weight:6.2f} {suggest:7.2f}{flag}")

    detector = InjectionDetector()
    scored = [(detector.scan(r["text"]).score, r["label"]) for r in direct]
    pos = [s for s, y in scored if y]
    neg = [s for s, y in scored if not y]
    best = max(
        (t / 100 for t in range(20, 96, 5)),
        key=lambda t: sum(s >= t for s in pos) / len(pos) + sum(s < t for s in neg) / len(neg),
    )
    print(f"user threshold maximising balanced accuracy on dev: {best:.2f}")
    benign = sorted(detector.scan(r["text"], "tool").score for r in tool if not r["label"])
    allowed = int(0.01 * len(benign))
    bar = benign[-1 - allowed] if benign else 0.0
    print(f"tool threshold for <= 1% false positives on dev tool output: > {bar:.3f}")


if __name__ == "__main__":
    main()
