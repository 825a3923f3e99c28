"""Whether, and after how long, to send a request again; no I/O, so both clients share it.

:class:`Retries` counts one request's failures against a
:class:`~tether.spec.policy.RetryPolicy` (a connection error; a GET answered
with one of its ``retry_statuses``; a broken stream) and says how long to wait,
``Retry-After`` honoured up to its cap, or raises once trying is over.
:class:`Call` settles each answer to a plain request: the model, or a
:class:`Wait`. A stream's retries are kept by
:class:`~tether.surfaces.client._follow.Follow`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel

from tether.spec.policy import RetryPolicy
from tether.surfaces.client._errors import ServerError, ServerUnreachable, error_of, read_body
from tether.surfaces.client._routes import Op

__all__ = ["TRANSIENT", "Broken", "Call", "Retries", "Wait"]

M = TypeVar("M", bound=BaseModel)

#: failures on the way that sending again may cure (not a bad URL or a refused protocol)
TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class Broken(Exception):
    """A stream that stopped short of its end although the connection did not fail."""


def _transient(op: Op[Any], exc: Exception, policy: RetryPolicy) -> bool:
    """Whether sending ``op`` again may cure ``exc``: a connection failure (a POST keeps
    its Idempotency-Key), or a transient status on a GET (a POST's error is its outcome)."""
    if isinstance(exc, (*TRANSIENT, Broken)):
        return True
    return (
        isinstance(exc, ServerError) and op.method == "GET" and exc.status in policy.retry_statuses
    )


def _gave_up(base: httpx.URL, op: Op[Any], tries: int, exc: Exception) -> Exception:
    """What to raise once retrying ``op`` is over: a status error as it came, else
    :class:`ServerUnreachable` saying what to check (and, for a POST, how to retry it)."""
    if isinstance(exc, ServerError):
        return exc
    message = (
        f"could not reach the Tether server at {base} after {tries} tries "
        f"({type(exc).__name__}: {exc or 'no detail'}): check the URL and that the server runs"
    )
    if op.method == "POST":
        message += (
            "; the request may have been applied: send it again with idempotency_key="
            f"{op.headers['Idempotency-Key']!r} to be sure it runs once"
        )
    error = ServerUnreachable(message)
    error.__cause__ = exc
    return error


class Retries:
    """One request's failures so far, against ``policy``; ``base`` names the server."""

    def __init__(self, policy: RetryPolicy, rng: random.Random, base: httpx.URL) -> None:
        self.policy = policy
        self.rng = rng
        self.base = base
        self.count = 0

    def wait(self, op: Op[Any], failure: Exception) -> float:
        """The wait before sending ``op`` again after ``failure``; raises when it may not be."""
        if not _transient(op, failure, self.policy):
            raise failure
        self.count += 1
        if self.count > self.policy.max_retries:
            raise _gave_up(self.base, op, self.count, failure)
        return self.policy.delay(self.count, failure, self.rng)

    def reset(self) -> None:
        """Progress was made: the retries count again from here."""
        self.count = 0


@dataclass(frozen=True, slots=True)
class Wait:
    """Send the request again after ``seconds``."""

    seconds: float


class Call(Generic[M]):
    """A plain request's tries: what each answer means. The client sends ``op``, hands
    :meth:`settle` the response or the connection error, and sleeps on a :class:`Wait`."""

    def __init__(self, op: Op[M], retries: Retries) -> None:
        self.op = op
        self.retries = retries

    def settle(self, answer: httpx.Response | Exception) -> M | Wait:
        """A success's model, or how long to wait before sending again; raises the failure
        (or :class:`ServerUnreachable`) when there is no trying again."""
        if isinstance(answer, httpx.Response):
            if answer.is_success or answer.status_code in self.op.ok:
                return read_body(answer, self.op.model)
            answer = error_of(answer)
        return Wait(self.retries.wait(self.op, answer))
