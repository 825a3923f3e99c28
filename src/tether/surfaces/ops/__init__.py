"""Operations: versions and the deploy gate, canary and rollback, metrics, traces, alerts.

Everything here watches or steers the runtime from outside: metrics,
traces, logs and alerts are observers of the one event model
(:mod:`tether.runtime.observe`); versions live in the store.
"""
