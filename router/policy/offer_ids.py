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


# ``uuid.UUID(int=n)`` validates its arguments in Python (about 1 µs, one per simulated offer);
# a counter from a checked start needs none of it, so the id's two slots are set directly.
_new_uuid = object.__new__
_set_int = uuid.UUID.__dict__["int"].__set__
_set_safe = uuid.UUID.__dict__["is_safe"].__set__
_UNKNOWN = uuid.SafeUUID.unknown


def sequential_offer_ids(start: int = 1) -> OfferIdFactory:
    if not 0 <= start < 1 << 128:
        raise ValueError("an offer id is a 128-bit unsigned integer")
    counter = itertools.count(start)

    def make() -> OfferId:
        offer_id = _new_uuid(uuid.UUID)
        _set_int(offer_id, next(counter))
        _set_safe(offer_id, _UNKNOWN)
        return OfferId(offer_id)

    return make
