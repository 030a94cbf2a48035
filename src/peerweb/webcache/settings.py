"""The web cache's configuration: one typed object, validated here."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError

# k: how many independent holders must vouch for a copy before it is shown (issue 18).
DEFAULT_AGREE = 2


@dataclass(frozen=True)
class WebCacheSettings:
    """A node's web cache. ``NodeConfig.web_cache`` is None when the cache is off."""

    size: int
    """Bytes of disk for copies (bodies and manifests); least recently used go first."""
    agree: int = DEFAULT_AGREE
    """Independent holders that must agree on a copy before it is shown."""
    allow_private_origins: bool = False
    """Fetch and cache pages whose host resolves to a loopback or private address. Off by
    default (an intranet page is not public); tests and benchmarks on loopback turn it on."""
    lookup_budget: float = 1.4
    """Seconds a lookup may take in all (DHT, holders' manifests, bodies)."""
    dht_timeout: float = 0.8
    """Seconds a lookup waits for the DHT to name holders."""
    holder_timeout: float = 0.6
    """Seconds one holder may take to answer with its copy's manifest."""
    fetch_timeout: float = 15.0
    """Seconds the node's own fetch of a page (with its sub-resources) may take."""
    announce_interval: float = 5 * 60.0
    """Holders re-announce their copies this often (the DHT forgets after ~30 min)."""

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise UsageError("--web-cache needs a positive size, e.g. 200MB")
        if self.agree < 1:
            raise UsageError("--web-cache-agree must be at least 1")
        if min(self.lookup_budget, self.dht_timeout, self.holder_timeout,
               self.fetch_timeout, self.announce_interval) <= 0:
            raise UsageError("web cache timeouts must be positive")
