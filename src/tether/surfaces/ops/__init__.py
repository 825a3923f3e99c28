"""Operations: versions and the deploy gate, canary and rollback, metrics, traces, alerts.

Everything here watches or steers the runtime from outside: metrics,
traces, logs and alerts are observers of the one event model
(:mod:`tether.runtime.observe`); versions live in the store
(:class:`tether.store.VersionStore`). This package is the public facade:
import from ``tether.surfaces.ops``.
"""

from tether.surfaces.logs import configure_logging
from tether.surfaces.ops.alerts import (
    Alert,
    Alerter,
    AlertKind,
    AlertSink,
    LogSink,
    Severity,
    WaitingApproval,
    WebhookSink,
    alerter_from_env,
    sign,
    verify,
    waiting_approvals,
)
from tether.surfaces.ops.canary import CanaryMonitor, CanaryPolicy, CanaryVerdict, Threshold
from tether.surfaces.ops.definition import Change, Diff, content_hash, definition_of, diff
from tether.surfaces.ops.deploy import DeployOutcome, GateReport, deploy, find_gate_files, run_gate
from tether.surfaces.ops.metrics import Metrics
from tether.surfaces.ops.traces import Tracing, tracing_from_env

__all__ = [
    "Alert",
    "AlertKind",
    "AlertSink",
    "Alerter",
    "CanaryMonitor",
    "CanaryPolicy",
    "CanaryVerdict",
    "Change",
    "DeployOutcome",
    "Diff",
    "GateReport",
    "LogSink",
    "Metrics",
    "Severity",
    "Threshold",
    "Tracing",
    "WaitingApproval",
    "WebhookSink",
    "alerter_from_env",
    "configure_logging",
    "content_hash",
    "definition_of",
    "deploy",
    "diff",
    "find_gate_files",
    "run_gate",
    "sign",
    "tracing_from_env",
    "verify",
    "waiting_approvals",
]
