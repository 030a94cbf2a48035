"""Shared fixtures: generated sites and a client for real gateway requests."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from hypothesis import settings
from multidict import CIMultiDict
from yarl import URL

from peerweb.tools.testnet import write_sample_site as write_site  # noqa: F401

# Property tests run in CI for a bounded, repeatable time: a fixed number of examples per test,
# the same ones every run (derandomize), no example database left behind. The deadline is
# generous because two cores are shared; it catches a parser gone quadratic, not jitter.
# HYPOTHESIS_PROFILE=thorough explores far more, with fresh random examples, when hunting.
settings.register_profile("ci", max_examples=100, deadline=timedelta(milliseconds=500),
                          derandomize=True, database=None, print_blob=True)
settings.register_profile("thorough", max_examples=5000, deadline=None, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def big_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("big") / "site"
    return root, write_site(root)


@pytest.fixture(scope="session")
def small_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("small") / "site"
    return root, write_site(root, small_files=8, big_size=2 * 1024 * 1024, seed=2)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Gateway:
    """Real HTTP requests to one node's gateway, in subdomain or path form."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.port = int(base.rsplit(":", 1)[1])

    async def site(self, site_id: str, path: str = "/", method: str = "GET",
                   headers: dict[str, str] | None = None) -> tuple[int, CIMultiDict[str], bytes]:
        all_headers = {"Host": f"{site_id}.localhost:{self.port}", **(headers or {})}
        url = URL(self.base + path, encoded=True)
        async with self.session.request(method, url, headers=all_headers,
                                        allow_redirects=False) as response:
            return response.status, response.headers.copy(), await response.read()

    async def raw(self, path: str, method: str = "GET",
                  headers: dict[str, str] | None = None) -> tuple[int, CIMultiDict[str], bytes]:
        url = URL(self.base + path, encoded=True)
        async with self.session.request(method, url, headers=headers or {},
                                        allow_redirects=False) as response:
            return response.status, response.headers.copy(), await response.read()


@pytest.fixture
async def http():
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield lambda running: Gateway(session, running.gateway_url)
