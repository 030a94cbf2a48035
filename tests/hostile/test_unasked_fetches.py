"""No page may make a node fetch what its user did not ask for (issue 16, item 1): real nodes
on 127.0.0.x, real gateway requests carrying the headers browsers send."""

from __future__ import annotations

import re

import aiohttp
from yarl import URL

from peerweb.http.gateway import NOT_FETCHED
from peerweb.tools.testnet import Testnet

from ..waiting import wait_until

IMG_FROM_ANOTHER_SITE = {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors",
                         "Sec-Fetch-Dest": "image"}
LINK_FROM_ANOTHER_SITE = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
                          "Sec-Fetch-Dest": "document", "Sec-Fetch-User": "?1"}
TYPED_BY_THE_USER = {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate",
                     "Sec-Fetch-Dest": "document", "Sec-Fetch-User": "?1"}


def refusal(what: str) -> str:
    return ("<!doctype html><meta charset=utf-8><title>Not fetched</title>"
            "<body style='font:16px system-ui;max-width:40em;margin:3em auto'>"
            f"<h1>Not fetched</h1><p>{NOT_FETCHED.format(what=what)}</p>"
            "<p><small>peerweb gateway · HTTP 403</small></p>")


async def request(session: aiohttp.ClientSession, base: str, host: str, path: str,
                  headers: dict[str, str], method: str = "GET",
                  data: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    status, headers, body = await request_bytes(session, base, host, path, headers, method, data)
    return status, headers, body.decode()


async def request_bytes(session: aiohttp.ClientSession, base: str, host: str, path: str,
                        headers: dict[str, str], method: str = "GET",
                        data: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    async with session.request(method, URL(base + path, encoded=True),
                               headers={"Host": host, **headers}, data=data,
                               allow_redirects=False) as response:
        return response.status, dict(response.headers), await response.read()


async def test_pages_cannot_start_fetches_and_links_ask_first(small_site):
    folder, contents = small_site
    timeout = aiohttp.ClientTimeout(total=60)
    async with Testnet(2) as net, aiohttp.ClientSession(timeout=timeout) as session:
        publisher, visitor = net.nodes
        result = await publisher.node.publish(folder, "site")
        sid, tid = result.site_id, result.infohash
        port = visitor.gateway_address[1]
        base = visitor.gateway_url
        site_host, plain_host = f"{sid}.localhost:{port}", f"localhost:{port}"
        evil = f"http://{'a' * 52}.localhost:{port}"

        def held() -> bool:
            return visitor.node.holds(tid) or sid in visitor.node.state.sites

        # Other sites' <img>, fetch() and iframes: 403, and nothing is fetched.
        for host, path, headers, what in [
            (site_host, "/", IMG_FROM_ANOTHER_SITE, f"site {sid}"),
            (plain_host, f"/ih/{tid}/index.html", IMG_FROM_ANOTHER_SITE, f"snapshot {tid}"),
            (plain_host, f"/s/{sid}/", {**IMG_FROM_ANOTHER_SITE, "Sec-Fetch-Site": "cross-site"},
             f"site {sid}"),
            (site_host, "/", {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors",
                              "Sec-Fetch-Dest": "empty", "Origin": evil}, f"site {sid}"),
            (site_host, "/", {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate",
                              "Sec-Fetch-Dest": "iframe"}, f"site {sid}"),
            (site_host, "/", {"Origin": "null"}, f"site {sid}"),  # an old browser's sandbox
            (site_host, "/", {"Referer": evil + "/"}, f"site {sid}"),
        ]:
            status, response_headers, body = await request(session, base, host, path, headers)
            assert (status, body) == (403, refusal(what)), (path, headers)
            assert response_headers["Cache-Control"] == "no-store"
        status, _, body = await request(session, base, site_host, "/", IMG_FROM_ANOTHER_SITE,
                                        method="HEAD")
        assert status == 403
        assert not held()

        # A link from another site: a page that asks, and still nothing is fetched.
        status, headers, page = await request(session, base, site_host, "/about?x=1",
                                              LINK_FROM_ANOTHER_SITE)
        assert status == 200 and not held()
        assert headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert f"A link from another page leads to site {sid}" in page
        token = re.search(r"name=peerweb-confirm value='([^']+)'", page).group(1)
        # The token is bound to its URL, cannot come from another origin, and is used once.
        form = {"peerweb-confirm": token}
        not_valid = (403, "This confirmation is not valid (it was used already, it expired, "
                          "or it came from another page). Open the link again to be asked again.")
        status, _, body = await request(session, base, site_host, "/about?x=1",
                                        {"Origin": evil}, "POST", form)
        assert (status, not_valid[1] in body) == (403, True)
        status, _, page = await request(session, base, site_host, "/about?x=1",
                                        LINK_FROM_ANOTHER_SITE)
        token = re.search(r"name=peerweb-confirm value='([^']+)'", page).group(1)
        status, _, body = await request(session, base, site_host, "/other", {}, "POST",
                                        {"peerweb-confirm": token})
        assert status == 403 and not_valid[1] in body
        status, _, page = await request(session, base, site_host, "/about?x=1",
                                        LINK_FROM_ANOTHER_SITE)
        token = re.search(r"name=peerweb-confirm value='([^']+)'", page).group(1)
        same_origin = {"Origin": f"http://{site_host}", "Sec-Fetch-Site": "same-origin",
                       "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
        status, headers, _ = await request(session, base, site_host, "/about?x=1", same_origin,
                                           "POST", {"peerweb-confirm": token})
        assert (status, headers["Location"]) == (303, "/about?x=1")
        assert not held()
        status, _, body = await request(session, base, site_host, "/about?x=1", same_origin,
                                        "POST", {"peerweb-confirm": token})
        assert status == 403 and not_valid[1] in body  # once only
        # The browser follows the 303: a same-origin navigation, which fetches the site (the
        # first-visit page answers while the lookup runs, and its script reloads the page).
        async def site_served() -> bool:
            status, _, body = await request(
                session, base, site_host, "/",
                {**same_origin, "Referer": f"http://{site_host}/about?x=1"})
            if status == 200 and "Opening a peerweb site" in body:
                return False
            assert (status, body.encode()) == (200, contents["index.html"])
            return True

        await wait_until(site_served, 20, "the confirmed site to be served")
        assert held()

        # Held now: served as before, whoever asks (the existing origin rules apply).
        status, _, body = await request(session, base, site_host, "/", IMG_FROM_ANOTHER_SITE)
        assert (status, body.encode()) == (200, contents["index.html"])


async def test_the_user_and_non_browser_clients_may_start_fetches(small_site):
    folder, contents = small_site
    async with Testnet(3) as net, aiohttp.ClientSession() as session:
        publisher, typed, curl = net.nodes
        result = await publisher.node.publish(folder, "site")
        sid, tid = result.site_id, result.infohash
        for running, headers in ((typed, TYPED_BY_THE_USER), (curl, {"User-Agent": "curl/8"})):
            port = running.gateway_address[1]

            async def served(url: str = running.gateway_url, host: str = f"{sid}.localhost:{port}",
                             headers: dict[str, str] = headers) -> bool:
                status, _, body = await request_bytes(session, url, host, "/assets/file01.js",
                                                      headers)
                if b"Opening a peerweb site" in body:  # the first-visit page, then a reload
                    return False
                assert (status, body) == (200, contents["assets/file01.js"])
                return True

            await wait_until(served, 60, "the file the user asked for")
            assert running.node.holds(tid)
        # A site's own requests for its own content (same origin) go on as before, and so
        # do snapshots by info-hash asked for by the user.
        port = typed.gateway_address[1]
        status, _, body = await request_bytes(
            session, typed.gateway_url, f"{sid}.localhost:{port}", "/media/big.bin",
            {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "no-cors",
             "Sec-Fetch-Dest": "video", "Range": "bytes=0-99",
             "Referer": f"http://{sid}.localhost:{port}/"})
        assert (status, body) == (206, contents["media/big.bin"][:100])
