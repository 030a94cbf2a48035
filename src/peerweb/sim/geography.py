"""The latency model: a synthetic geography, not a measured data set.

Each node sits somewhere on the globe, in one of a few populated regions (weights roughly
those of internet users by continent, centres and spreads chosen by hand), and has an
access delay of its own (home links, Wi-Fi, the first hops; lognormal). The round-trip time
between two nodes is

    rtt = 2 * great_circle_distance / FIBRE_SPEED * ROUTE_STRETCH + access(a) + access(b)

so that two nodes in one city see ~10-30 ms, Europe-North America ~100 ms and Europe-
Oceania ~300 ms, the spread of published RTT surveys; calibrating it against measured RTTs
(or replacing it with a published RTT matrix) is the open part of issue 21.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EARTH_RADIUS_KM = 6371.0
FIBRE_SPEED_KM_PER_S = 200_000.0
"""Light in glass travels at about 2/3 c."""
ROUTE_STRETCH = 1.6
"""Internet paths are longer than the great circle (detours, peering points)."""


@dataclass(frozen=True)
class Region:
    name: str
    weight: float
    """Share of the nodes placed here."""
    lat: float
    lon: float
    spread_deg: float
    """Standard deviation of the position around the centre, degrees."""


REGIONS = (
    Region("asia", 0.45, 30.0, 110.0, 12.0),
    Region("europe", 0.20, 50.0, 10.0, 8.0),
    Region("north america", 0.13, 40.0, -95.0, 12.0),
    Region("south america", 0.09, -15.0, -55.0, 10.0),
    Region("africa", 0.10, 5.0, 20.0, 12.0),
    Region("oceania", 0.03, -30.0, 145.0, 8.0),
)


@dataclass(frozen=True)
class GeographyConfig:
    regions: tuple[Region, ...] = REGIONS
    access_median: float = 0.010
    """Median access delay added per end to a round trip, seconds."""
    access_sigma: float = 0.6
    """Lognormal sigma of the access delay (a long tail of slow links)."""


class Geography:
    """Positions and access delays of ``n`` nodes; one-way delays between any two."""

    def __init__(self, n: int, rng: np.random.Generator,
                 config: GeographyConfig | None = None) -> None:
        config = config or GeographyConfig()
        weights = np.array([r.weight for r in config.regions])
        region = rng.choice(len(config.regions), size=n, p=weights / weights.sum())
        lat = np.array([r.lat for r in config.regions])[region]
        lon = np.array([r.lon for r in config.regions])[region]
        spread = np.array([r.spread_deg for r in config.regions])[region]
        lat = np.clip(lat + rng.normal(0.0, 1.0, n) * spread, -89.0, 89.0)
        lon = lon + rng.normal(0.0, 1.0, n) * spread
        phi, lam = np.radians(lat), np.radians(lon)
        xyz = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
        self.region = region
        # Plain lists: a message reads two entries, and list indexing beats numpy's there.
        self._x, self._y, self._z = (xyz[i].tolist() for i in range(3))
        access = config.access_median * np.exp(rng.normal(0.0, config.access_sigma, n))
        self._access = access.tolist()
        self._per_rad = 2 * EARTH_RADIUS_KM / FIBRE_SPEED_KM_PER_S * ROUTE_STRETCH

    def rtt(self, a: int, b: int) -> float:
        """Round-trip time between nodes ``a`` and ``b``, seconds."""
        if a == b:
            return 0.0
        dot = self._x[a] * self._x[b] + self._y[a] * self._y[b] + self._z[a] * self._z[b]
        angle = math.acos(max(-1.0, min(1.0, dot)))
        return float(angle * self._per_rad + self._access[a] + self._access[b])

    def one_way(self, a: int, b: int) -> float:
        return self.rtt(a, b) / 2

    def sample_rtts(self, pairs: int, rng: np.random.Generator) -> np.ndarray:
        """RTTs of random pairs, for the docs' distribution figure."""
        n = len(self._access)
        a, b = rng.integers(0, n, pairs), rng.integers(0, n, pairs)
        return np.array([self.rtt(int(i), int(j)) for i, j in zip(a, b, strict=True)])
