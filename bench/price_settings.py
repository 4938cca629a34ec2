"""The user's saved price table: data/prices.json beside the database, shared by the dashboard and
the CLI so that a price edited in Settings costs every new run, wherever it is launched."""

from __future__ import annotations

import json

from bench.pricing import DEFAULT_PRICES, PriceTable
from core.atomic import write_bytes_atomically
from core.errors import InputError
from core.paths import prices_path


def load_prices() -> PriceTable:
    """The saved table, else the catalog. Raises InputError for a saved file that is not a
    price table (one line naming the file)."""
    path = prices_path()
    if not path.is_file():
        return DEFAULT_PRICES
    try:
        return PriceTable.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, RecursionError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InputError(f"saved prices {path} are unreadable ({reason}); fix or delete the "
                         f"file") from None


def save_prices(table: PriceTable) -> None:
    """Save the table (atomically); saving the catalog itself removes the saved file."""
    path = prices_path()
    if table == DEFAULT_PRICES:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(path, json.dumps(table.to_dict(), indent=2).encode())
