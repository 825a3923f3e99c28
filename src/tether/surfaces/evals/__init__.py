"""Evals: golden sets of cases, run against an agent, checked, reported.

- :mod:`~tether.surfaces.evals.cases`: the case format (YAML or JSONL; JSON
  Schema in ``schemas/eval-case.schema.json``);
- :mod:`~tether.surfaces.evals.suite`: loading case files and folders;
- :mod:`~tether.surfaces.evals.runner`: running cases (scripted or live, pass^k);
- :mod:`~tether.surfaces.evals.expect`: the expectations and their checks;
- :mod:`~tether.surfaces.evals.coverage`: which cases exercise each of the agent's tools.

The ``tether eval`` command drives them; see ``docs/evals.md``.
"""

from __future__ import annotations

from tether.surfaces.evals.cases import Case, Expectation, SuiteConfig, Turn, case_schema
from tether.surfaces.evals.coverage import (
    Coverage,
    ToolCoverage,
    agent_tools,
    coverage_of,
    coverage_of_cases,
)
from tether.surfaces.evals.expect import QUESTIONS, Check, Trajectory
from tether.surfaces.evals.report import EvalReport
from tether.surfaces.evals.runner import CaseResult, Environment, Target, run_case, run_cases
from tether.surfaces.evals.suite import Suite, load_suite, parse_cases

__all__ = [
    "QUESTIONS",
    "Case",
    "CaseResult",
    "Check",
    "Coverage",
    "Environment",
    "EvalReport",
    "Expectation",
    "Suite",
    "SuiteConfig",
    "Target",
    "ToolCoverage",
    "Trajectory",
    "Turn",
    "agent_tools",
    "case_schema",
    "coverage_of",
    "coverage_of_cases",
    "load_suite",
    "parse_cases",
    "run_case",
    "run_cases",
]
