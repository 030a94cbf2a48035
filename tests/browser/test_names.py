"""Names in real Chromium, on real nodes of a private network: a petname and a name two
zones deep in both gateway forms, a name typed in the dashboard's open box, and a domain
bridged with ``_peerweb`` that keeps opening with its DNS server killed, on the node that
visited it and on one that never asked DNS (it gets the TXT record's proof via the DHT)."""

from __future__ import annotations

import os
import signal
import time

import dns.name
from playwright.async_api import Browser, expect

from peerweb.config import DnsSettings, NodeConfig
from peerweb.content.addressing import Address, Target
from peerweb.content.identity import KeyStore
from peerweb.dns import decisions
from peerweb.dns.service import share_key
from peerweb.tools.testnet import Testnet

from ..dns_authority import build_zone
from ..integration.test_dns import AUTHORITY_HOST, ORIGIN, start_authority, stop_authority
from ..waiting import wait_until

TIMEOUT = 30.0


def write_site(folder, marker: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text(f"<!doctype html><meta charset=utf-8><title>{marker}"
                                       f"</title><h1 id=hello>{marker}</h1>")


async def test_names_and_a_bridged_domain_with_its_dns_down_open_in_chromium(
        browser: Browser, tmp_path) -> None:
    root = tmp_path / "net"
    key = KeyStore(root / "node-0" / "keys").create("site")
    domain = "blog." + ORIGIN.rstrip(".")
    zone = build_zone(ORIGIN, {"_peerweb.blog": [("TXT", f'"site={key.site_id}"')]}, ttl=1)
    (tmp_path / "zone").write_text(zone.text)
    (tmp_path / "anchor").write_text(zone.anchor)
    authority, port = start_authority(tmp_path / "zone")
    try:
        settings = DnsSettings(upstreams=((AUTHORITY_HOST, port),),
                               trust_anchors=tmp_path / "anchor", upstream_timeout=1.0)
        write_site(tmp_path / "site", "bridged")
        write_site(tmp_path / "other", "zoned")
        async with Testnet(3, root=root, template=NodeConfig(dns=settings)) as net:
            owner, visitor, newcomer = net.nodes
            await owner.node.publish(tmp_path / "site", "site", domains=(domain,))
            other = await owner.node.publish(tmp_path / "other", "other")
            alice, bob = owner.node.keys.create("alice"), owner.node.keys.create("bob")
            assert (await owner.node.publish_name("alice", "bob", bob.site_id, 60)).stored
            assert (await owner.node.publish_name("bob", "blog", other.site_id, 60)).stored
            book = visitor.node.names.book
            book.add("alice", Address(Target.SITE, alice.site_id))
            book.add("mine", Address(Target.SITE, other.site_id))
            gw = visitor.gateway_address[1]
            page = await (await browser.new_context()).new_page()

            for url in (f"http://mine.localhost:{gw}/", f"http://localhost:{gw}/n/mine/",
                        f"http://blog.bob.alice.localhost:{gw}/",
                        f"http://localhost:{gw}/n/blog.bob.alice/"):
                await page.goto(url)
                await expect(page.locator("#hello")).to_have_text("zoned")

            # Typed into the dashboard's open box.
            await page.goto(f"http://localhost:{gw}/")
            await page.fill("#address", "blog.bob.alice")
            await page.get_by_role("button", name="Open", exact=True).last.click()
            await expect(page.locator("#hello")).to_have_text("zoned")
            assert page.url == f"http://blog.bob.alice.localhost:{gw}/"

            # The bridged domain while its DNS works, then with the authority killed.
            await page.goto(f"http://{domain}.localhost:{gw}/")
            await expect(page.locator("#hello")).to_have_text("bridged")
            txt = dns.name.from_text(f"_peerweb.{domain}.")

            async def announced() -> bool:
                return bool(await newcomer.node.swarm.find_peers(share_key(txt, 16), 5.0))

            await wait_until(announced, TIMEOUT, "the visitor's TXT proof in the DHT")
            os.kill(authority.pid, signal.SIGKILL)
            authority.wait(10)
            held = visitor.node.dns._cache[(txt.to_text(), 16)]
            await wait_until(lambda: not decisions.fresh(held.copy, time.time()), TIMEOUT,
                             "the TXT record's TTL to run out")
            fresh = await (await browser.new_context()).new_page()  # no browser cache
            await fresh.goto(f"http://{domain}.localhost:{gw}/")
            await expect(fresh.locator("#hello")).to_have_text("bridged")
            assert visitor.node.dns.counters["served_stale"] >= 1
            await fresh.goto(f"http://{domain}.localhost:{newcomer.gateway_address[1]}/")
            await expect(fresh.locator("#hello")).to_have_text("bridged")
            assert newcomer.node.dns.counters["served_stale"] >= 1  # a peer's proof
            await fresh.screenshot(path=tmp_path / "bridged-dns-down.png")
    finally:
        stop_authority(authority)
