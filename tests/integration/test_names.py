"""Names on loopback: petnames, names two zones deep through a private DHT, updates and
revocation by version, forged and replayed records refused, and names in the gateway's two
forms and in the CLI."""

from __future__ import annotations

import asyncio
import json
import sys

from peerweb.content.addressing import Address, Target
from peerweb.content.item import SignedItem
from peerweb.errors import PeerwebError
from peerweb.names import records as rec
from peerweb.names.resolution import Query
from peerweb.names.service import NameService
from peerweb.tools.testnet import Testnet, write_sample_site

from ..waiting import wait_until

TTL = 2  # seconds: updates reach the visitor within this once its cache expires
TIMEOUT = 30.0


async def peerweb(*args: str, data_dir) -> tuple[int, str, str]:
    """The CLI in a child process (the nodes run on this test's event loop)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "peerweb", *args, "--data-dir", str(data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def resolves_to(names: NameService, name: str) -> str:
    try:
        return (await names.resolve(name)).ident
    except PeerwebError as exc:  # the condition polled: a failure means "not yet"
        return f"error: {exc}"


async def test_names_two_zones_deep_updates_revocation_gateway_and_cli(tmp_path, http):
    contents = write_sample_site(tmp_path / "one", small_files=4, big_size=0, seed=1)
    other = write_sample_site(tmp_path / "two", small_files=4, big_size=0, seed=2)
    async with Testnet(4, root=tmp_path / "net") as net:
        owner, _, _, visitor = net.nodes
        site = await owner.node.publish(tmp_path / "one", "site")
        site2 = await owner.node.publish(tmp_path / "two", "site2")
        alice, bob = owner.node.keys.create("alice"), owner.node.keys.create("bob")
        # Alice delegates "bob" to Bob's zone; Bob names his blog.
        assert (await owner.node.publish_name("alice", "bob", bob.site_id, 60)).stored
        assert (await owner.node.publish_name("bob", "blog", site.site_id, TTL)).stored

        names = visitor.node.names
        names.book.add("alice", Address(Target.SITE, alice.site_id))
        found = await visitor.node.resolve_name("blog.bob.alice")
        assert found.ident == site.site_id and len(found.chain) == 3

        # The gateway, both forms, and an unknown name's page says what to do.
        gw = http(visitor)
        status, _, body = await gw.site("blog.bob.alice", "/")
        assert status == 200 and body == contents["index.html"]
        status, _, body = await gw.raw("/n/blog.bob.alice/")
        assert status == 200 and body == contents["index.html"]
        status, _, body = await gw.site("nobody", "/")
        assert status == 404 and b"peerweb name add nobody" in body
        status, _, body = await gw.raw("/n/shop.alice/")
        assert status == 404 and b"not published in zone alice" in body

        # The CLI: a petname added while the node runs, and a delegated name.
        data_dir = visitor.config.data_dir
        code, _, err = await peerweb("name", "add", "mine", site2.site_id, data_dir=data_dir)
        assert code == 0, err
        code, out, _ = await peerweb("name", "list", data_dir=data_dir)
        assert "mine\tsite\t" + site2.site_id in out and "alice\tsite" in out
        code, out, err = await peerweb("get", "mine/", data_dir=data_dir)
        assert code == 0 and out.encode() == other["index.html"], err
        code, out, err = await peerweb("get", "blog.bob.alice/", "-o", str(tmp_path / "copy"),
                                       data_dir=data_dir)
        assert code == 0, err
        assert (tmp_path / "copy" / "index.html").read_bytes() == contents["index.html"]
        code, _, err = await peerweb("--json", "get", "nope.alice/", data_dir=data_dir)
        assert code == 1 and '"kind":"unknown_name"' in err
        code, _, _ = await peerweb("name", "rm", "mine", data_dir=data_dir)
        assert code == 0 and names.book.get("mine") is None

        # A record of version 1, as the DHT holds it now (to replay later).
        salt = rec.label_salt("blog")
        captured = await visitor.node.swarm.get_items(bob.public_key, salt, 5.0)
        assert captured and rec.verify_record(captured[0], salt).version == 1

        # An update by a higher version reaches the visitor once its cached record expires.
        update = await owner.node.publish_name("bob", "blog", site2.site_id, TTL)
        assert update.record.version == 2
        await wait_until(lambda: _is(names, "blog.bob.alice", site2.site_id), TIMEOUT,
                         "the update to reach the visitor")
        status, _, body = await gw.site("blog.bob.alice", "/")
        assert status == 200 and body == other["index.html"]

        # A replayed older record (validly signed by Bob, once true) and a forged one (a
        # hostile DHT node's answer) are refused; the visitor keeps version 2.
        forged = SignedItem(bob.public_key, salt, 99, captured[0].value.replace(
            b"versioni1e", b"versioni9e"), captured[0].signature)
        real_get = visitor.node.swarm.get_items

        async def hostile_get(public_key, salt_, timeout):
            return [*(await real_get(public_key, salt_, timeout)), captured[0], forged]

        visitor.node.swarm.get_items = hostile_get  # type: ignore[method-assign]
        refused = names.refused
        names.cache.forget(Query(bob.public_key, "blog"))
        assert (await visitor.node.resolve_name("blog.bob.alice")).ident == site2.site_id
        assert names.refused == refused + 2
        visitor.node.swarm.get_items = real_get  # type: ignore[method-assign]

        # Revocation: a higher version with no target ends the name for everyone.
        revoked = await owner.node.publish_name("bob", "blog", None, TTL)
        assert revoked.record.version == 3
        await wait_until(lambda: _is(names, "blog.bob.alice", "error: 'blog' was revoked"),
                         TIMEOUT, "the revocation to reach the visitor")
        status, _, body = await gw.raw("/n/blog.bob.alice/")
        assert status == 404 and b"revoked" in body


async def _is(names: NameService, name: str, expected: str) -> bool:
    return (await resolves_to(names, name)).startswith(expected)


async def test_names_published_resolved_and_revoked_with_the_cli(tmp_path, http):
    """The issue's commands end to end: ``name publish --key``, ``name resolve`` and
    ``name revoke`` through the CLI against running nodes, and a petname alone through the
    gateway in both forms."""
    contents = write_sample_site(tmp_path / "site", small_files=2, big_size=0, seed=3)
    async with Testnet(3, root=tmp_path / "net") as net:
        owner, _, visitor = net.nodes
        site = await owner.node.publish(tmp_path / "site", "site")
        alice = owner.node.keys.create("alice")
        owner_dir, visitor_dir = owner.config.data_dir, visitor.config.data_dir

        code, out, err = await peerweb("--json", "name", "publish", "--key", "alice", "blog",
                                       site.site_id, "--ttl", str(TTL), data_dir=owner_dir)
        assert code == 0, err
        published = json.loads(out.splitlines()[-1])
        assert published["version"] == 1 and published["stored"] > 0
        assert published["target"] == site.site_id and not published["revoked"]

        code, _, err = await peerweb("name", "add", "alice", alice.site_id,
                                     data_dir=visitor_dir)
        assert code == 0, err
        code, out, err = await peerweb("--json", "name", "resolve", "blog.alice",
                                       data_dir=visitor_dir)
        assert code == 0, err
        found = json.loads(out.splitlines()[-1])
        assert found["ident"] == site.site_id and found["target"] == "site"
        assert len(found["chain"]) == 2 and "version 1" in found["chain"][1]

        # A petname alone, in both gateway forms.
        code, _, err = await peerweb("name", "add", "mine", site.site_id, data_dir=visitor_dir)
        assert code == 0, err
        gw = http(visitor)
        status, _, body = await gw.site("mine", "/")
        assert status == 200 and body == contents["index.html"]
        status, _, body = await gw.raw("/n/mine/")
        assert status == 200 and body == contents["index.html"]

        code, out, err = await peerweb("--json", "name", "revoke", "--key", "alice", "blog",
                                       "--ttl", str(TTL), data_dir=owner_dir)
        assert code == 0, err
        revoked = json.loads(out.splitlines()[-1])
        assert revoked["version"] == 2 and revoked["revoked"]

        async def revoked_for_the_visitor() -> bool:
            code, _, err = await peerweb("name", "resolve", "blog.alice", data_dir=visitor_dir)
            return code == 1 and "revoked" in err

        await wait_until(revoked_for_the_visitor, TIMEOUT, "the revocation to reach the CLI")
        status, _, body = await gw.site("blog.alice", "/")
        assert status == 404 and b"revoked" in body
