"""The unsupported-claim check (``tether.runtime.claims``): microseconds per final answer.

It runs on every final answer, so what matters is the cost for typical
answers. Each row is the median, over ``--runs`` rounds, of the CPU time
(``time.process_time``) of ``--n`` calls of ``unsupported_claims`` on one
answer, per call:

- ``no_claim``: a short answer with no done-verb (the fast path: one
  normalisation and one token scan);
- ``long_no_claim``: a 1.5 KB answer with no done-verb;
- ``supported``: "Your order has been cancelled...": a claim that the
  successful ``cancel_order`` call supports;
- ``unsupported``: the same claim after a look-up only (flagged);
- ``state_from_lookup``: "The order is cancelled." backed by a look-up's
  result that says so;
- ``negated``: a claim-like verb under a negation;
- ``german``, ``french``: claims with accents (the non-ASCII fold);
- ``zero_width``: a claim hidden by a zero-width space.

Run::

    .venv/bin/python bench/claims.py            # a table
    .venv/bin/python bench/claims.py --json     # last line: one JSON object
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from tether import tool
from tether.runtime.claims import Done, unsupported_claims


@tool(reads=True)
def get_order_details(order_id: str) -> str:
    """Get the status and details of an order.

    Args:
        order_id: The order id, e.g. "#W0000000".
    """
    return order_id


@tool(writes=True, irreversible=True, summary="cancel order {order_id}")
def cancel_order(order_id: str, reason: str) -> str:
    """Cancel a pending order and refund it to the original payment method.

    Args:
        order_id: The order id.
        reason: Why.
    """
    return order_id


LOOKUP = '{"order_id": "#W1", "status": "pending", "items": [{"name": "Lamp", "price": 35.5}]}'
CANCELLED = '{"order_id": "#W1", "status": "cancelled"}'
LONG = (
    "Here is what I found for your account. Order #W1 holds a desk lamp and two notebooks; "
    "it is pending and will ship from our warehouse within two business days. "
) * 10

#: name -> (answer, the successful calls of the turn)
CASES: dict[str, tuple[str, list[Done]]] = {
    "no_claim": ("Your order #W1 is pending and will ship within two days.", [
        (get_order_details, LOOKUP),
    ]),
    "long_no_claim": (LONG, [(get_order_details, LOOKUP)]),
    "supported": (
        "Your order #W1 has been cancelled and the refund goes to your Visa card.",
        [(get_order_details, LOOKUP), (cancel_order, CANCELLED)],
    ),
    "unsupported": (
        "Your order #W1 has been cancelled and the refund goes to your Visa card.",
        [(get_order_details, LOOKUP)],
    ),
    "state_from_lookup": ("The order #W1 is cancelled.", [(get_order_details, CANCELLED)]),
    "negated": ("I have not cancelled anything yet: shall I go ahead?", []),
    "german": ("Ihre Bestellung #W1 wurde storniert und erstattet.", [(get_order_details, LOOKUP)]),
    "french": ("Votre commande #W1 a été annulée et remboursée.", [(get_order_details, LOOKUP)]),
    "zero_width": ("Order #W1 can\u200bcelled.", [(get_order_details, LOOKUP)]),
}  # fmt: skip


def measure(answer: str, done: list[Done], n: int, runs: int) -> float:
    """Median CPU microseconds per call."""
    rounds = []
    for _ in range(runs):
        t0 = time.process_time()
        for _ in range(n):
            unsupported_claims(answer, done)
        rounds.append((time.process_time() - t0) / n * 1e6)
    return statistics.median(rounds)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=2000, help="calls per round")
    parser.add_argument("--runs", type=int, default=5, help="rounds (the median is kept)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    figures: dict[str, float] = {}
    print(f"| answer | chars | flagged | µs per answer (median of {args.runs}) |")
    print("|---|---:|---|---:|")
    for name, (answer, done) in CASES.items():
        flagged = unsupported_claims(answer, done)
        figures[name] = round(measure(answer, done, args.n, args.runs), 2)
        print(f"| {name} | {len(answer)} | {', '.join(flagged) or '-'} | {figures[name]:.1f} |")
    if args.json:
        print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
