"""The dashboard and the first-visit hook over plain HTTP, on real nodes: headers, actions,
the address links are built from, and what non-browser clients get."""

from __future__ import annotations

import re
from dataclasses import replace

from peerweb.config import NodeConfig
from peerweb.content.addressing import Address, Target
from peerweb.http import firstvisit
from peerweb.tools.testnet import Testnet

from ..waiting import wait_until

BROWSER_POST = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}


def write_site(folder, title: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text(f"<!doctype html><title>{title}</title><h1>hi</h1>")
    (folder / "about.html").write_text("<p>about</p>")


async def token_of(gw) -> str:
    status, headers, body = await gw.raw("/")
    assert status == 200
    found = re.search(rb"name=token value='([^']+)'", body)
    assert found is not None
    return found.group(1).decode()


async def post(gw, path: str, fields: dict[str, str], headers: dict[str, str]):
    url = gw.base + path
    async with gw.session.post(url, data=fields, headers=headers,
                               allow_redirects=False) as response:
        return response.status, response.headers.copy(), await response.read()


async def test_dashboard_headers_actions_and_remove(http, tmp_path) -> None:
    async with Testnet(2, template=NodeConfig(volunteer=True)) as net:
        a, b = net.nodes
        write_site(tmp_path / "s", "Site <one>")
        result = await a.node.publish(tmp_path / "s", "s")
        sid = result.site_id
        gb = http(b)
        status, _, _ = await gb.site(sid, "/")  # index.html is here: the title is known
        assert status == 200
        await wait_until(lambda: b.node.holds(result.infohash), 10, "B to hold the site")

        status, headers, body = await gb.raw("/")
        assert status == 200 and b"Site &lt;one&gt;" in body
        assert headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["Cross-Origin-Resource-Policy"] == "same-origin"
        # A volunteer lets any origin read what it mirrors, never its dashboard.
        assert "Access-Control-Allow-Origin" not in headers
        status, headers, _ = await gb.raw("/peerweb/v1/record/" + sid)
        assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
        status, headers, body = await gb.raw("/dashboard/stats.json")
        assert status == 200 and b'"upload_rate"' in body
        assert "Access-Control-Allow-Origin" not in headers
        status, headers, body = await gb.raw("/dashboard/static/dashboard.js")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")
        assert (await gb.raw("/dashboard/static/../node.py"))[0] == 404
        assert (await gb.raw("/dashboard/nowhere"))[0] == 404
        assert (await gb.raw("/", method="POST"))[0] == 405  # as before the dashboard

        token = await token_of(gb)
        own = {"Origin": gb.base, **BROWSER_POST}
        fields = {"token": token, "site": sid, "next": f"/dashboard/site/{sid}"}
        status, _, _ = await post(gb, "/dashboard/action/pin", {**fields, "token": "x"}, own)
        assert status == 403 and not b.node.state.sites[sid].pinned
        status, headers, _ = await post(gb, "/dashboard/action/pin", fields, own)
        assert status == 303 and b.node.state.sites[sid].pinned
        assert headers["Location"] == f"/dashboard/site/{sid}?done=pinned"
        status, _, body = await gb.raw(f"/dashboard/site/{sid}?done=pinned")
        assert status == 200 and b"Pinned: this node keeps" in body
        assert b"about.html" in body and b"Peers (" in body
        # Somebody else's text cannot be slipped into the notice.
        status, _, body = await gb.raw("/?done=Your%20node%20is%20hacked")
        assert b"hacked" not in body
        status, headers, _ = await post(
            gb, "/dashboard/action/pin", {**fields, "next": "//evil.example/"}, own)
        assert headers["Location"].startswith("/?done=")

        # A's own site cannot be removed from A's dashboard; B can drop its copy.
        ga = http(a)
        status, _, body = await post(ga, "/dashboard/action/remove",
                                     {"token": await token_of(ga), "site": sid},
                                     {"Origin": ga.base, **BROWSER_POST})
        assert status == 400 and b"publishes" in body
        folder = b.node.content_dir / result.infohash
        status, headers, _ = await post(gb, "/dashboard/action/remove", fields, own)
        assert status == 303 and headers["Location"] == "/?done=removed"
        assert sid not in b.node.state.sites and not b.node.holds(result.infohash)
        await wait_until(lambda: not any(p.is_file() for p in folder.rglob("*")), 10,
                         "B to delete the site's files")

        # The open box, for an id and for rubbish.
        status, headers, _ = await post(gb, "/dashboard/open",
                                        {"token": token, "address": result.magnet}, own)
        assert status == 303 and headers["Location"] == f"http://{sid}.localhost:{gb.port}/"
        status, _, body = await post(gb, "/dashboard/open",
                                     {"token": token, "address": "nonsense"}, own)
        assert status == 400 and b"Cannot open" in body


async def test_links_follow_a_gateway_that_is_not_on_127_0_0_1(http, tmp_path) -> None:
    async with Testnet(1) as net:
        running = await net.add_node(replace(net.config_for(1), gateway=("127.0.0.2", 0)))
        write_site(tmp_path / "s", "Elsewhere")
        sid = (await running.node.publish(tmp_path / "s", "s")).site_id
        gw = http(running)
        assert gw.base.startswith("http://127.0.0.2:")
        status, _, body = await gw.raw("/")
        assert status == 200
        assert f"{gw.base}/s/{sid}/".encode() in body
        assert f"{sid}.localhost".encode() not in body  # it would reach 127.0.0.1 instead
        status, _, body = await gw.raw(f"/s/{sid}/")
        assert status == 200 and b"Elsewhere" in body


async def test_first_visit_hook_only_answers_browsers(http, tmp_path) -> None:
    async with Testnet(2, template=NodeConfig(fetch_timeout=3.0)) as net:
        a, b = net.nodes
        gw = http(b)
        unknown = a.node.keys.get_or_create("nobody").site_id
        navigate = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
                    "Sec-Fetch-Site": "none", "Accept": "text/html"}  # typed by the user
        status, headers, body = await gw.site(unknown, "/", headers=navigate)
        assert status == 200 and b"Opening a peerweb site" in body
        assert headers["Cache-Control"] == "no-store"
        assert "script-src 'nonce-" in headers["Content-Security-Policy"]
        # The same in path form (its own page, not the site's, so no sandbox is needed).
        status, _, body = await gw.raw(f"/s/{unknown}/", headers=navigate)
        assert status == 200 and b"Opening a peerweb site" in body

        async def ended():
            status, _, body = await gw.site(unknown, "/", headers={"X-Peerweb-Lookup": "1"})
            assert status == 200
            return b'"failed"' in body and body

        body = await wait_until(ended, 20, "the lookup to end")
        assert b"Nobody is sharing this site" in body
        # Scripts, images and tools wait for the answer itself, as before.
        status, _, body = await gw.site(unknown, "/", headers={"Accept": "*/*"})
        assert status == 404 and b"no signed pointer" in body
        # A subresource request from no page of this site may not start a fetch at all.
        status, _, _ = await gw.site(unknown, "/", headers={"Sec-Fetch-Mode": "no-cors",
                                                            "Accept": "text/html"})
        assert status == 403


async def test_a_first_visit_found_within_the_budget_gets_the_site_itself(
        http, tmp_path, monkeypatch) -> None:
    # A generous budget: on a loaded machine a lookup may take longer than the real one.
    monkeypatch.setattr(firstvisit, "DIRECT_BUDGET", 20.0)
    async with Testnet(2) as net:
        a, b = net.nodes
        write_site(tmp_path / "s", "Quick")
        sid = (await a.node.publish(tmp_path / "s", "s")).site_id
        navigate = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
                    "Sec-Fetch-Site": "none", "Accept": "text/html"}
        status, _, body = await http(b).site(sid, "/", headers=navigate)
        assert status == 200 and b"<title>Quick</title>" in body
        assert b"Opening a peerweb site" not in body


async def test_the_open_box_takes_names_that_resolve(http, tmp_path) -> None:
    """Names are accepted where the dashboard takes a site id: a petname and a name in a
    zone open in the gateway's name form; a name that names nothing is refused beside the
    box with what to do."""
    async with Testnet(2) as net:
        owner, visitor = net.nodes
        write_site(tmp_path / "s", "Named")
        result = await owner.node.publish(tmp_path / "s", "s")
        zone = owner.node.keys.create("zone")
        assert (await owner.node.publish_name("zone", "blog", result.site_id, 60)).stored
        visitor.node.names.book.add("mine", Address(Target.SITE, result.site_id))
        visitor.node.names.book.add("zone", Address(Target.SITE, zone.site_id))
        gw = http(visitor)
        token = await token_of(gw)
        own = {"Origin": gw.base, **BROWSER_POST}

        status, headers, _ = await post(gw, "/dashboard/open",
                                        {"token": token, "address": "mine/about.html"}, own)
        assert status == 303
        assert headers["Location"] == f"http://mine.localhost:{gw.port}/about.html"
        status, _, body = await gw.site("mine", "/about.html")
        assert status == 200 and body == b"<p>about</p>"

        status, headers, _ = await post(gw, "/dashboard/open",
                                        {"token": token, "address": "blog.zone"}, own)
        assert status == 303 and headers["Location"] == f"http://blog.zone.localhost:{gw.port}/"
        status, _, body = await gw.site("blog.zone", "/")
        assert status == 200 and b"<title>Named</title>" in body

        status, _, body = await post(gw, "/dashboard/open",
                                     {"token": token, "address": "nobody"}, own)
        assert status == 400 and b"peerweb name add nobody" in body
        status, _, body = await post(gw, "/dashboard/open",
                                     {"token": token, "address": "shop.zone"}, own)
        assert status == 400 and b"not published in zone zone" in body
