"""The dashboard's decisions and pages, without I/O: which links a request gets, whether an
action came from the dashboard itself, and the HTML of the home and site pages (plain values
in, escaped HTML out). ``dashboard`` serves them.
"""

from __future__ import annotations

import datetime
import hmac
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..content import addressing
from ..content.addressing import Target
from ..errors import UsageError

if TYPE_CHECKING:
    from ..node import inspect


PREFIX = "/dashboard/"
STATIC = ("dashboard.css", "dashboard.js")
_STATIC_TYPES = {"css": "text/css", "js": "text/javascript"}
# The piece availability strip has at most this many cells; larger torrents are grouped,
# each cell showing the fewest copies of any piece in its group (the weakest link).
AVAILABILITY_CELLS = 240
# Titles of snapshots never change: kept once read, for this many snapshots.
TITLE_CACHE = 512
# Host names on which ``<site-id>.localhost`` reaches the same gateway: it resolves to the
# loopback address, so only a gateway seen there is reachable under it.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1"})

HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    # Forms post to the dashboard; "open" redirects to a site, on *.localhost.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self' http://*.localhost:*; "
        "frame-ancestors 'none'; base-uri 'none'"),
}


# What an action says when it is done, by the key its redirect carries.
NOTICES = {
    "pinned": "Pinned: this node keeps the site whatever the disk quota.",
    "unpinned": "Unpinned: the disk quota may remove the site when space runs short.",
    "removed": "Removed: the site and its files are gone from this computer.",
}

# -- decisions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Links:
    """Where a site is reached through this gateway."""

    path: str
    """``http://HOST:PORT/s/<id>/``: works for every client."""
    subdomain: str | None
    """``http://<id>.localhost:PORT/``: the site's own origin, for browsers (None where that
    name would not reach this gateway)."""

    @property
    def preferred(self) -> str:
        return self.subdomain or self.path


def origin_of(host: str, port: int | None) -> str:
    """``http://host:port`` as a browser writes it (no port 80, IPv6 in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}" + (f":{port}" if port not in (None, 80) else "")


def site_links(host: str, port: int | None, site_id: str) -> Links:
    base = origin_of(host, port)
    subdomain = (origin_of(f"{site_id}.localhost", port) + "/"
                 if host.lower() in LOOPBACK_NAMES else None)
    return Links(f"{base}/s/{site_id}/", subdomain)


def name_links(host: str, port: int | None, name: str) -> Links:
    """Where a name (petname, ``label.zone``, bridged domain) is reached: the gateway's two
    name forms, ``/n/<name>/`` and ``<name>.localhost``."""
    subdomain = (origin_of(f"{name}.localhost", port) + "/"
                 if host.lower() in LOOPBACK_NAMES else None)
    return Links(f"{origin_of(host, port)}/n/{name}/", subdomain)


def open_address(text: str) -> addressing.Address:
    """What the "open" box was given: a site id, name, info-hash, magnet link or gateway URL
    (BadAddress for anything else)."""
    if not text.strip():
        raise UsageError("type a site id, a name or a magnet link to open")
    return addressing.parse_cli_address(text)


def open_target(text: str, host: str, port: int | None) -> str:
    """The URL the "open" box sends the browser to (see ``open_address``); a name is sent
    as it is, to be resolved by the gateway (the dashboard checks it resolves first)."""
    address = open_address(text)
    path = address.path.lstrip("/") if address.path not in ("", "/") else ""
    if address.target is Target.SITE:
        return site_links(host, port, address.ident).preferred + quote(path, safe="/%")
    if address.target is Target.SNAPSHOT:
        return f"{origin_of(host, port)}/ih/{address.ident}/" + quote(path, safe="/%")
    if address.target is Target.NAME:
        return name_links(host, port, address.ident).preferred + quote(path, safe="/%")
    raise UsageError("that is not a site id, a name, an info-hash or a magnet link")


def cross_site_refusal(headers: Mapping[str, str], own_origin: str, sent_token: str,
                       token: str) -> str | None:
    """Why a POST to a dashboard action must be refused, or None if it may go ahead.

    The token proves the form came from a dashboard page; ``Origin`` and ``Sec-Fetch-Site``
    (which browsers set and pages cannot) prove the browser posted it from the dashboard's
    origin, not from a site on ``<id>.localhost`` or any other page. Clients without either
    header (not a browser) still need the token, which only a dashboard page holds."""
    if not hmac.compare_digest(sent_token.encode(), token.encode()):
        return "the form's token is missing or stale: reload the dashboard and try again"
    fetch_site = headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site != "same-origin":
        return f"the request came from another site ({fetch_site})"
    origin = headers.get("Origin")
    if origin is not None and origin.lower() != own_origin.lower():
        return "the request came from another origin"
    return None


def local_redirect(target: str, fallback: str = "/") -> str:
    """Where to go after an action: a path on the dashboard, never another host."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return fallback


def group_min(counts: Sequence[int], cells: int) -> list[tuple[int, int, int]]:
    """``(first_piece, last_piece, fewest_copies)`` for at most ``cells`` groups of pieces."""
    if not counts:
        return []
    per = -(-len(counts) // cells)  # ceiling division
    return [(start, min(start + per, len(counts)) - 1, min(counts[start:start + per]))
            for start in range(0, len(counts), per)]


def human_bytes(value: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def ratio(uploaded: int, downloaded: int) -> str:
    return f"{uploaded / downloaded:.2f}" if downloaded else "—"


# -- views -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteRow:
    """One line of the site table."""

    site_id: str
    title: str | None
    version: int
    size: int | None
    """Total bytes of the current version (None: its metadata is not here yet)."""
    on_disk: int
    peers: int
    upload_rate: int
    download_rate: int
    uploaded: int
    downloaded: int
    published: bool
    pinned: bool
    links: Links
    error: str | None

    @property
    def group(self) -> str:
        return "published" if self.published else "pinned" if self.pinned else "cached"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>{_e(title)}</title>"
            f"<link rel=stylesheet href='{PREFIX}static/dashboard.css'>"
            f"<script src='{PREFIX}static/dashboard.js' defer></script>"
            f"<body>{body}<footer>peerweb node dashboard · only this computer can use "
            "this page</footer></body></html>")


def _action(name: str, site_id: str, label: str, token: str, back: str,
            danger: bool = False) -> str:
    confirm = (" data-confirm='Remove this site and delete its files from this computer?'"
               if danger else "")
    return (f"<form method=post action='{PREFIX}action/{name}' class=inline{confirm}>"
            f"<input type=hidden name=token value='{_e(token)}'>"
            f"<input type=hidden name=site value='{_e(site_id)}'>"
            f"<input type=hidden name=next value='{_e(back)}'>"
            f"<button type=submit name=do value='{name}'"
            f"{' class=danger' if danger else ''}>{_e(label)}</button></form>")


def _site_actions(row: SiteRow, token: str, back: str, with_details: bool = True) -> str:
    parts = [f"<a class=button href='{_e(row.links.preferred)}' target=_blank "
             "rel=noopener>Open</a>",
             f"<button type=button class=copy data-url='{_e(row.links.preferred)}'>"
             "Copy link</button>"]
    if row.pinned:
        parts.append(_action("unpin", row.site_id, "Unpin", token, back))
    elif not row.published:
        parts.append(_action("pin", row.site_id, "Pin", token, back))
    if not row.published:
        parts.append(_action("remove", row.site_id, "Remove", token, back, danger=True))
    if with_details:
        parts.append(f"<a class=button href='{PREFIX}site/{_e(row.site_id)}'>Details</a>")
    # A <div>, not a <p>: a <form> inside a <p> would end the paragraph.
    return "<div class=actions>" + "".join(parts) + "</div>"


def _name_cell(row: SiteRow) -> str:
    name = (f"<a href='{PREFIX}site/{_e(row.site_id)}' class=title>"
            f"{_e(row.title or 'Untitled site')}</a>")
    badges = "".join(f"<span class='badge {b}'>{b}</span>"
                     for b, on in (("published", row.published), ("pinned", row.pinned)) if on)
    error = f"<div class=error>{_e(row.error)}</div>" if row.error else ""
    return (f"{name}{badges}<div class=sid><code>{_e(row.site_id)}</code></div>{error}")


def render_home(status: Mapping[str, Any], rows: Sequence[SiteRow], token: str,
                origin: str, notice: str | None = None) -> str:
    cached_bytes = sum(r.on_disk for r in rows if r.group == "cached")
    kept_bytes = sum(r.on_disk for r in rows if r.group != "cached")
    quota = int(status["disk_quota"])
    groups = []
    headings = {"published": "Published by this node", "pinned": "Pinned (kept whatever the "
                "quota)", "cached": "Visited (kept while the quota allows)"}
    for group, heading in headings.items():
        members = [r for r in rows if r.group == group]
        if not members:
            continue
        lines = "".join(
            f"<tr data-site='{_e(r.site_id)}'><td>{_name_cell(r)}</td>"
            f"<td class=num>v{r.version}</td>"
            f"<td class=num>{_e(human_bytes(r.size)) if r.size is not None else '…'}</td>"
            f"<td class=num data-field=peers>{r.peers}</td>"
            f"<td class=num data-field=upload_rate>{_e(human_bytes(r.upload_rate))}/s</td>"
            f"<td class=num data-field=download_rate>{_e(human_bytes(r.download_rate))}/s</td>"
            f"<td class=num>{ratio(r.uploaded, r.downloaded)}</td>"
            f"<td>{_site_actions(r, token, '/')}</td></tr>"
            for r in members)
        groups.append(
            f"<section class=sites id='{group}'><h2>{_e(heading)}</h2><table>"
            "<thead><tr><th>Site</th><th>Version</th><th>Size</th><th>Peers</th>"
            "<th>Upload</th><th>Download</th><th>Ratio</th><th></th></tr></thead>"
            f"<tbody>{lines}</tbody></table></section>")
    if not groups:
        groups.append("<section class=sites><h2>Sites</h2><p class=empty>No sites yet. "
                      "Publish a folder with <code>peerweb publish FOLDER</code>, or open a "
                      "site above.</p></section>")
    banner = f"<p class=notice role=status>{_e(notice)}</p>" if notice else ""
    body = (
        f"<header><h1>peerweb</h1><p class=summary>{_e(status['network'])} network · "
        f"{_count(int(status['dht_nodes']), 'dht_nodes', 'DHT node')} · "
        f"{_count(int(status['peers']), 'peers', 'peer')} · "
        f"up {_e(_duration(float(status['uptime'])))}</p></header>{banner}"
        f"<form class=open method=post action='{PREFIX}open'>"
        f"<input type=hidden name=token value='{_e(token)}'>"
        "<label for=address>Open a site</label>"
        "<input id=address name=address required autocomplete=off spellcheck=false "
        "placeholder='site id, name or magnet:?xs=urn:btpk:…'>"
        "<button type=submit>Open</button></form>"
        "<div class=panels><section class=panel><h2>Bandwidth</h2>"
        "<svg id=plot viewBox='0 0 300 80' preserveAspectRatio=none role=img "
        "aria-label='upload and download over the last minute'>"
        "<polyline id=plot-up points=''/><polyline id=plot-down points=''/></svg>"
        f"<p class=legend><span class=up>↑ <b data-field=upload_rate>"
        f"{_e(human_bytes(int(status['upload_rate'])))}/s</b></span> "
        f"<span class=down>↓ <b data-field=download_rate>"
        f"{_e(human_bytes(int(status['download_rate'])))}/s</b></span> "
        f"<span class=muted>total ↑ {_e(human_bytes(int(status['uploaded'])))} "
        f"↓ {_e(human_bytes(int(status['downloaded'])))}</span></p></section>"
        + reach_panel(status) +
        "<section class=panel><h2>Disk</h2>"
        f"<meter id=quota min=0 max='{max(quota, 1)}' value='{min(cached_bytes, quota)}' "
        f"high='{int(quota * 0.9)}'></meter>"
        f"<p>{_e(human_bytes(cached_bytes))} of {_e(human_bytes(quota))} used by visited "
        f"sites.<br><span class=muted>{_e(human_bytes(kept_bytes))} more in published and "
        "pinned sites, which the quota never removes.</span></p></section></div>"
        + "".join(groups)
        + "<p class=hint>Browsers open sites at <code>http://&lt;site-id&gt;.localhost"
        f"</code> on this gateway. Tools such as wget, curl or Python do not resolve "
        f"<code>.localhost</code> names: give them <code>{_e(origin)}/s/&lt;site-id&gt;/"
        "</code> instead.</p>"
    )
    return _page("peerweb", body)


def reach_panel(status: Mapping[str, Any]) -> str:
    """Whether strangers can reach this node, its NAT, the relay reservation it holds and,
    as a relay, whom it relays for (``status`` from ``node.reach``); empty without them."""
    reach = status.get("reachability")
    if not isinstance(reach, Mapping):
        return ""
    verdict = {True: "Reachable from outside", False: "Not reachable from outside",
               None: "Reachability not known yet"}.get(reach.get("reachable"), "Unknown")
    lines = [f"<p data-field=reachable>{_e(verdict)}"
             + (f" at <code>{_e(str(reach['external']))}</code>" if reach.get("external")
                else "") + "</p>",
             f"<p class=muted>NAT: <span data-field=nat>{_e(str(reach.get('nat')))}</span>"
             f" · {_e(str(reach.get('reason', '')))}</p>"]
    held = status.get("reservation")
    if isinstance(held, Mapping):
        state = "held" if held.get("held") else "not held yet"
        lines.append(f"<p>Relay reservation at <code>{_e(str(held.get('relay')))}</code>: "
                     f"{state}, {int(held.get('tunnels') or 0)} tunnel(s), "
                     f"{int(held.get('punched') or 0)} punched</p>")
    relay = status.get("relay")
    if isinstance(relay, Mapping):
        circuits = relay.get("circuits") or []
        whom = sorted({str(c.get("for")) for c in circuits if isinstance(c, Mapping)})
        lines.append(f"<p>Relaying: {len(circuits)} circuit(s)"
                     + (f" for {_e(', '.join(whom))}" if whom else "")
                     + f", {_e(human_bytes(int(relay.get('relayed_bytes') or 0)))} relayed, "
                     f"{len(relay.get('reservations') or [])} reservation(s)</p>")
    return "<section class=panel id=reach><h2>Reachability</h2>" + "".join(lines) + "</section>"


@dataclass(frozen=True)
class SiteDetails:
    """Everything the per-site page shows."""

    row: SiteRow
    history: Sequence[Mapping[str, Any]]
    files: Sequence[inspect.FileView]
    peers: Sequence[inspect.PeerView]
    pieces: Sequence[int]
    """Copies of each piece among the connected peers (empty: no metadata here)."""


def render_site(details: SiteDetails, token: str, notice: str | None = None) -> str:
    row = details.row
    back = f"{PREFIX}site/{row.site_id}"
    links = [f"<li><a href='{_e(row.links.subdomain)}' target=_blank rel=noopener>"
             f"{_e(row.links.subdomain)}</a> <span class=muted>(browsers)</span></li>"
             if row.links.subdomain else "",
             f"<li><a href='{_e(row.links.path)}' target=_blank rel=noopener>"
             f"{_e(row.links.path)}</a> <span class=muted>(any client: wget, curl, "
             "Python)</span></li>"]
    versions = "".join(
        f"<tr><td class=num>v{int(v['version'])}</td><td>{_e(_when(float(v['seen'])))}</td>"
        f"<td>{'current' if v['current'] else ''}{' · held here' if v['held'] else ''}</td>"
        f"<td>{_changed(v.get('changed'), first=i == 0)}</td></tr>"
        for i, v in enumerate(details.history))
    files = "".join(
        f"<tr><td><a href='{_e(row.links.preferred + quote(f.path))}' target=_blank "
        f"rel=noopener>{_e(f.path)}</a></td><td class=num>{_e(human_bytes(f.size))}</td>"
        f"<td class=num>{_percent(f.done, f.size)}</td></tr>" for f in details.files)
    peers = "".join(
        f"<tr><td><code>{_e(p.address)}</code></td><td>{_e(p.client)}</td>"
        f"<td class=num>{round(p.progress * 100)} %</td>"
        f"<td class=num>{_e(human_bytes(p.download_rate))}/s</td>"
        f"<td class=num>{_e(human_bytes(p.upload_rate))}/s</td></tr>" for p in details.peers)
    banner = f"<p class=notice role=status>{_e(notice)}</p>" if notice else ""
    body = (
        f"<header><p><a href='/'>← all sites</a></p>"
        f"<h1>{_e(row.title or 'Untitled site')}</h1>"
        f"<p class=sid><code>{_e(row.site_id)}</code></p>"
        f"<div class=lead>{_site_actions(row, token, back, with_details=False)}</div>"
        f"</header>{banner}"
        f"<section><h2>Addresses</h2><ul class=links>{''.join(links)}</ul></section>"
        f"<section><h2>Versions</h2><table><thead><tr><th>Version</th><th>First seen</th>"
        f"<th>State</th><th>Files changed</th></tr></thead><tbody>{versions}</tbody></table>"
        "</section>"
        f"<section><h2>Pieces among connected peers</h2>{_availability(details.pieces)}"
        "</section>"
        f"<section><h2>Peers ({len(details.peers)})</h2>"
        + (f"<table><thead><tr><th>Address</th><th>Client</th><th>Holds</th>"
           f"<th>From it</th><th>To it</th></tr></thead><tbody>{peers}</tbody></table>"
           if details.peers else "<p class=empty>No peer is connected for this version.</p>")
        + f"</section><section><h2>Files ({len(details.files)})</h2>"
        + (f"<table><thead><tr><th>Path</th><th>Size</th><th>Here</th></tr></thead>"
           f"<tbody>{files}</tbody></table>" if details.files
           else "<p class=empty>The file list has not arrived yet.</p>")
        + "</section>"
    )
    return _page(f"{row.title or row.site_id[:12]} · peerweb", body)


def _availability(counts: Sequence[int]) -> str:
    if not counts:
        return "<p class=empty>Not known until the file list has arrived.</p>"
    groups = group_min(counts, AVAILABILITY_CELLS)
    width = 4
    cells = "".join(
        f"<rect x='{i * width}' y='0' width='{width - 1}' height='20' "
        f"class='c{min(copies, 3)}'><title>"
        f"{_e(_piece_label(first, last))}: {copies} "
        f"{'copy' if copies == 1 else 'copies'}</title></rect>"
        for i, (first, last, copies) in enumerate(groups))
    fewest, most = min(counts), max(counts)
    spread = f"{fewest}" if fewest == most else f"{fewest} to {most}"
    return (f"<svg class=pieces viewBox='0 0 {len(groups) * width} 20' "
            f"preserveAspectRatio=none role=img aria-label='copies of each piece'>{cells}</svg>"
            f"<p class=spread>{len(counts)} pieces; the connected peers hold "
            f"{spread} {'copy' if most == 1 else 'copies'} of each. "
            "<span class='key c0'>none</span><span class='key c1'>1</span>"
            "<span class='key c2'>2</span><span class='key c3'>3+</span></p>")


def _piece_label(first: int, last: int) -> str:
    return f"piece {first}" if first == last else f"pieces {first}–{last}"


def _changed(changed: object, first: bool) -> str:
    if first:
        return "<span class=muted>first version seen here</span>"
    if not isinstance(changed, list):
        return "<span class=muted>not known (the version before is not here)</span>"
    if not changed:
        return "<span class=muted>none</span>"
    return "<ul class=changed>" + "".join(f"<li><code>{_e(p)}</code></li>"
                                          for p in changed) + "</ul>"


def _percent(done: int, total: int) -> str:
    return "100 %" if done >= total else f"{done * 100 // max(total, 1)} %"


def _when(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _count(value: int, field: str, noun: str) -> str:
    """``3 peers`` with the number live-updated by the script (it keeps the noun's plural
    right through ``data-noun``)."""
    return (f"<span data-field={field} data-noun='{_e(noun)}'>{value} {_e(noun)}"
            f"{'' if value == 1 else 's'}</span>")


def _duration(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


# -- the adapter ---------------------------------------------------------------------------


