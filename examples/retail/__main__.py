"""Command line for the retail example: ``python -m examples.retail COMMAND``.

- ``load --shop FILE [--db PATH]``: load a shop file (db.json shape) into the SQLite shop.
- ``export [--db PATH] -o FILE``: write the SQLite shop back out as a shop file.
- ``generate -o FILE [--seed N]``: write a deterministic generated shop file.
- ``demo-info``: print the demo customer and questions to ask the agent.

``--db`` defaults to the agent's shop (``TETHER_RETAIL_DB`` or the Tether cache).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from examples.retail.agent import default_shop_path
from examples.retail.generate import DEMO, HELP_ARTICLES, generate, to_json
from examples.retail.shop import Shop

app = typer.Typer(
    name="examples.retail",
    help="The retail support example: manage its shop and show the demo customer.",
    no_args_is_help=True,
    add_completion=False,
)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="SQLite shop file (default: the agent's shop)."),
]


@app.command()
def load(
    shop: Annotated[Path, typer.Option("--shop", help="Shop file to load (db.json shape).")],
    db: DbOption = None,
) -> None:
    """Replace the SQLite shop's products, users and orders with a shop file."""
    path = db or default_shop_path()
    started = time.perf_counter()
    data = json.loads(shop.read_text(encoding="utf-8"))
    with Shop.open(path) as target:
        target.load_json(data)
        if not target.help_articles():
            target.load_help_articles(HELP_ARTICLES)
    took = time.perf_counter() - started
    counts = ", ".join(f"{len(data[k])} {k}" for k in ("products", "users", "orders"))
    typer.echo(f"loaded {counts} from {shop} into {path} in {took:.2f}s")


@app.command()
def export(
    output: Annotated[Path, typer.Option("-o", "--output", help="Shop file to write.")],
    db: DbOption = None,
) -> None:
    """Write the SQLite shop out as a shop file (db.json shape)."""
    path = db or default_shop_path()
    if not path.exists():
        raise typer.BadParameter(f"no shop at {path}; create one with 'load'", param_hint="--db")
    with Shop.open(path) as source:
        output.write_text(to_json(source.export_json()), encoding="utf-8")
    typer.echo(f"exported {path} to {output}")


@app.command("generate")
def generate_command(
    output: Annotated[Path, typer.Option("-o", "--output", help="Shop file to write.")],
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same file.")] = 0,
) -> None:
    """Write a small generated shop (10 products, 20 users, 40 orders)."""
    output.write_text(to_json(generate(seed)), encoding="utf-8")
    typer.echo(f"wrote the shop of seed {seed} to {output}")


@app.command("demo-info")
def demo_info() -> None:
    """Print the demo customer of the generated shop and questions to ask the agent."""
    d = DEMO
    orders = generate()["orders"]
    lines = [
        f"  order {oid} ({orders[oid]['status']}): "
        + "; ".join(
            f"{it['name']} ({', '.join(it['options'].values())}) ${it['price']:.2f}"
            for it in orders[oid]["items"]
        )
        for oid in (d["pending_order"], d["delivered_order"])
    ]
    typer.echo(
        f"Demo customer: {d['first_name']} {d['last_name']}, zip {d['zip']}, {d['email']}\n"
        f"  user id {d['user_id']}; payment methods {d['credit_card']}, {d['gift_card']}\n"
        + "\n".join(lines)
        + "\n\nAsk the agent, for example:\n"
        f"  \"I'm {d['first_name']} {d['last_name']}, zip {d['zip']}. "
        f"What's the status of my order {d['pending_order']}?\"\n"
        f"  \"I'd like to return the running shoes from order {d['delivered_order']}; "
        'please refund my gift card."\n'
        f"  \"I'm {d['first_name']} {d['last_name']}, zip {d['zip']}. Please cancel my order "
        f'{d["pending_order"]}, I no longer need it." (then answer yes or no)'
    )


if __name__ == "__main__":
    app()
