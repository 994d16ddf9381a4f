"""Reading ``GET /metrics`` in tests: one scrape, parsed, and its samples summed by label."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

__all__ = ["Client", "Scrape", "scrape"]

Client = TestClient[web.Request, web.Application]


@dataclass(frozen=True)
class Scrape:
    samples: tuple[Sample, ...]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def labels(self) -> set[str]:
        return {v for s in self.samples for v in s.labels.values()}


async def scrape(client: Client, token: str | None = None) -> Scrape:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "text/plain"
    families = text_string_to_metric_families(await response.text())
    return Scrape(tuple(s for f in families for s in f.samples))
