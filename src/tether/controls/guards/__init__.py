"""Guards: checks on untrusted content before it reaches the model (DESIGN.md guarantee 8).

The prompt-injection detector lives here: normalisation and decoding
(:mod:`.normalize`), the signals (:mod:`.rules`), the detector that scores
text window by window (:mod:`.detector`), the policies that turn a score
into an action per source (:mod:`.policy`), and the optional model judge
for untrusted tool output (:mod:`.judge`).
"""

from tether.controls.guards.detector import (
    DEFAULT_THRESHOLDS,
    Detector,
    InjectionDetector,
    ScanResult,
    Source,
    Span,
)
from tether.controls.guards.judge import (
    JudgeVerdict,
    judge_content,
    judge_request,
    judge_tokens,
    judged_scan,
    with_verdict,
)
from tether.controls.guards.normalize import Variant, decode, normalize, variants
from tether.controls.guards.policy import Action, Decision, GuardPolicy, apply_policy
from tether.controls.guards.rules import CATEGORIES, RULES, Rule, combine

__all__ = [
    "CATEGORIES",
    "DEFAULT_THRESHOLDS",
    "RULES",
    "Action",
    "Decision",
    "Detector",
    "GuardPolicy",
    "InjectionDetector",
    "JudgeVerdict",
    "Rule",
    "ScanResult",
    "Source",
    "Span",
    "Variant",
    "apply_policy",
    "combine",
    "decode",
    "judge_content",
    "judge_request",
    "judge_tokens",
    "judged_scan",
    "normalize",
    "variants",
    "with_verdict",
]
