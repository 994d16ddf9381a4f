"""Where offer ids come from.  The live router uses fresh UUIDv7s (unique across router instances
and failovers); the simulator uses a counter, so a seeded run is reproducible to the id."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable

from core.ids import OfferId, new_id

__all__ = ["OfferIdFactory", "random_offer_ids", "sequential_offer_ids"]

OfferIdFactory = Callable[[], OfferId]


def random_offer_ids() -> OfferIdFactory:
    def make() -> OfferId:
        return OfferId(new_id())

    return make


def sequential_offer_ids(start: int = 1) -> OfferIdFactory:
    counter = itertools.count(start)

    def make() -> OfferId:
        return OfferId(uuid.UUID(int=next(counter)))

    return make
