"""The origin's half of the verifying loader: which requests get it, what it embeds."""

from __future__ import annotations

import json
import math
import re

import pytest

from peerweb.content.identity import SiteKey, site_id_from_public_key
from peerweb.errors import UsageError
from peerweb.spike import loader

SITE = site_id_from_public_key(SiteKey.generate("s").public_key)


def test_only_page_loads_get_the_loader() -> None:
    assert loader.wants_page({"Sec-Fetch-Dest": "document", "Accept": "*/*"})
    assert not loader.wants_page({"Sec-Fetch-Dest": "script", "Accept": "text/html"})
    assert not loader.wants_page({"Sec-Fetch-Dest": "iframe"})
    # Older browsers without Fetch Metadata: by Accept.
    assert loader.wants_page({"Accept": "text/html,application/xhtml+xml"})
    assert not loader.wants_page({"Accept": "*/*"})


def test_the_worker_is_told_gateway_roots_of_mirrors_of_this_site_only() -> None:
    mirrors = [f"http://10.0.0.1:8080/s/{SITE}", f"http://10.0.0.2:80/s/{SITE}/",
               "http://elsewhere/some/path", f"http://10.0.0.1:8080/s/{SITE}"]
    config = loader.worker_config(SITE, True, mirrors, version=4)
    assert config == {"site_id": SITE, "public_key": config["public_key"], "mode": "handoff",
                      "mirrors": ["http://10.0.0.1:8080", "http://10.0.0.2:80"], "version": 4,
                      "timings": loader.WorkerTimings().to_json()}
    assert site_id_from_public_key(bytes.fromhex(str(config["public_key"]))) == SITE
    assert loader.worker_config(SITE, False, [])["mode"] == "normal"


def test_the_workers_timings_come_from_the_origin_with_todays_defaults() -> None:
    timings = loader.WorkerTimings().to_json()
    assert timings["config_refresh"] == 5.0 and timings["hedge_after"] == 1.5
    assert timings["release_after"] == 600.0
    short = loader.WorkerTimings(config_refresh=0.2, release_after=1.0)
    sent = loader.worker_config(SITE, True, [], timings=short)["timings"]
    assert sent == {**timings, "config_refresh": 0.2, "release_after": 1.0}
    with pytest.raises(UsageError, match="hedge_after"):
        loader.WorkerTimings(hedge_after=-1)
    with pytest.raises(UsageError, match="bundle_wait"):
        loader.WorkerTimings(bundle_wait=math.nan)


def test_the_loader_page_embeds_the_workers_config_and_escapes_the_fallback() -> None:
    fallback = f'http://m/s/{SITE}/a"b</script><x>'
    config = loader.worker_config(SITE, True, [f"http://m/s/{SITE}"], version=2)
    page = loader.loader_page(config, fallback).decode()
    assert "</script><x>" not in page.split("<script>", 1)[1].split("</script>", 1)[0]
    values = json.loads(re.search(r"const c = (\{.*?\});\n", page).group(1)  # type: ignore
                        .replace("<\\/", "</"))
    assert values["fallback"] == fallback and values["sw"] == loader.SW_PATH
    assert values["config"] == config  # handed to the worker: no second request for it
    assert 'href="http://m/s/' in page and "&quot;" in page  # the noscript link, escaped
    assert len(page) < 4096  # small: it is what every handed-off visitor gets first


def test_worker_scripts_are_served_with_their_scope_and_validators() -> None:
    found = loader.asset(loader.SW_PATH)
    assert found is not None
    body, etag = found
    # Every part ahead of the worker's own code, in one response: no second round trip.
    marks = [b"root.peerwebVerify = {", b"root.peerwebDecide = {", b"root.peerwebPrefetch = {",
             b"addEventListener('fetch'"]
    assert [body.index(m) for m in marks] == sorted(body.index(m) for m in marks)
    headers = loader.asset_headers(loader.SW_PATH, etag)
    assert headers["Service-Worker-Allowed"] == "/" and headers["ETag"] == etag
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    for path in loader.PART_PATHS:  # each part on its own, for the tests and a lone sw.js
        part = loader.asset(path)
        assert part is not None and part[0] in body and part[1] != etag
        assert "Service-Worker-Allowed" not in loader.asset_headers(path, part[1])
    assert loader.asset("/.peerweb/../etc/passwd") is None
    assert loader.asset("/.peerweb/worker.json") is None
