"""``peerweb get``: a file, or a folder's whole tree, through the running node's gateway.

Every byte comes through the gateway, which serves only bytes that passed libtorrent's
piece check. A folder (an address ending in ``/``) is fetched file by file from the one
snapshot its listing came from, so a new version published meanwhile cannot mix in.
"""

from __future__ import annotations

import html
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import quote, unquote

import click

from ..content.addressing import Address, Target, parse_cli_address
from ..errors import (
    BadAddress,
    NodeNotRunning,
    NotFound,
    PeerwebError,
    SwarmTimeout,
    UsageError,
    error_from,
)
from ..http.control_client import NodeClient
from .options import data_dir_option, json_option, with_examples
from .output import Bar, Output, human, plural, progress_bar

# Reads from the gateway; a file not yet here arrives as its pieces are verified.
COPY_CHUNK = 256 * 1024
GATEWAY_TIMEOUT = 120.0
# Listing a site's files may first look its pointer and metadata up in the DHT.
LISTING_TIMEOUT = 120.0
# `-o NAME.html` for a folder writes its index page, not its tree (see writes_tree).
PAGE_SUFFIXES = (".html", ".htm")
# Media types a terminal can show; anything else is binary and needs -o.
_TEXT_TYPES = ("application/json", "application/javascript", "application/xml",
               "image/svg+xml")


@click.command()
@click.argument("address")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Write the file here; for a folder (ADDRESS ending in /), the directory "
                   "to write its files into.")
@click.option("-O", "--remote-name", is_flag=True,
              help="Write into the current directory under the remote name (a folder: a "
                   "directory named after it).")
@json_option
@data_dir_option
@with_examples("peerweb get SITE-ID                      # the home page, to the terminal",
               "peerweb get blog/ -o blog                # a site by its petname",
               "peerweb get SITE-ID/about/ -o about.html  # a page",
               "peerweb get SITE-ID/media/video.mp4 -O    # saved as video.mp4",
               "peerweb get SITE-ID/ -o my-copy           # every file of the site",
               "peerweb get 'magnet:?xt=urn:btih:HASH&tr=URL' -o page.html")
def get(address: str, output: Path | None, remote_name: bool, out: Output,
        data_dir: Path) -> None:
    """Fetch ADDRESS[/PATH] through the running node: a site id, a name (`blog`,
    `friends-blog.alice`: see `peerweb name`), an info-hash, a magnet or a gateway URL. A
    PATH ending in / is a folder: with -o DIR or -O every file under it is written, byte for
    byte (-o NAME.html writes only its index page); to the terminal, its index page. Binary
    files are never written to a terminal."""
    parsed = parse_cli_address(address)
    check_infohash(parsed)
    if output is not None and remote_name:
        raise UsageError("give -o PATH or -O, not both")
    folder = address.strip().endswith("/")
    if remote_name:
        output = Path(remote_name_of(parsed, folder))
    client = NodeClient(data_dir)
    if parsed.target is Target.NAME:  # a petname or label.zone: the node resolves it once
        parsed = resolved(client, parsed)
    if parsed.trackers:  # a magnet's trackers: the node must announce to them to find peers
        client.add_snapshot(parsed.ident, parsed.trackers)
    if folder and output is not None and writes_tree(output):
        _get_tree(client, parsed, output, out)
        return
    if output is None and out.json:
        raise UsageError("with --json, stdout carries the record: write the file with "
                         "-o FILE or -O")
    prefix = "/s/" if parsed.target is Target.SITE else "/ih/"
    url = client.gateway + prefix + parsed.ident + (parsed.path or "/")
    if output is None:
        fetch(url, None, client.gateway)
        return
    with progress_bar(out, output.name, None) as bar:
        received = fetch(url, output, client.gateway, bar)
    out.text(f"wrote {output} ({human(received)})", err=True)
    if out.json:
        out.record({"path": str(output), "size": received, "url": url})


def resolved(client: NodeClient, parsed: Address) -> Address:
    """The site or snapshot a name names, at the same path (UnknownName: what to do)."""
    found = client.resolve_name(parsed.ident)
    target = Target.SITE if found["target"] == Target.SITE.value else Target.SNAPSHOT
    return Address(target, str(found["ident"]), parsed.path,
                   trackers=tuple(str(t) for t in found.get("trackers", ())))


def writes_tree(output: Path) -> bool:
    """Whether ``-o OUTPUT`` for a folder means its files (a directory) or its index page:
    a name ending in .html or .htm that is not already a directory asks for the page, as
    in ``get SITE/about/ -o about.html``."""
    return output.is_dir() or output.suffix.lower() not in PAGE_SUFFIXES


def check_infohash(parsed: Address) -> None:
    """Refuse an info-hash that is well formed yet names nothing: all zeros is what
    libtorrent reads as "no info-hash at all" (it would fail deep in the node)."""
    if parsed.target is Target.SNAPSHOT and not parsed.ident.strip("0"):
        raise BadAddress(f"not an info-hash: {parsed.ident} is all zeros, which names no "
                         "torrent")


def remote_name_of(parsed: Address, folder: bool) -> str:
    """The name ``-O`` writes to: the file's (``index.html`` for a page), or the folder's
    (the site id or info-hash for the top of a site)."""
    segments = [s for s in unquote(parsed.path).split("/") if s not in ("", ".", "..")]
    if folder:
        return segments[-1] if segments else parsed.ident
    if not segments or parsed.path.endswith("/"):
        return "index.html"
    return segments[-1]


@dataclass(frozen=True)
class Planned:
    """One file of a folder fetch."""

    remote: str
    """Its path inside the snapshot."""
    local: Path
    """Where it is written."""
    size: int


def plan_tree(files: list[dict[str, Any]], folder: str, dest: Path) -> list[Planned]:
    """The files under ``folder`` (a path inside the snapshot, '' for all of it, ending in
    '/' otherwise) and where each goes under ``dest``. A path that could leave ``dest``
    (``..``, an absolute path, a backslash or NUL) is refused: the list comes from a
    torrent someone else made."""
    planned = []
    for entry in files:
        remote = str(entry["path"])
        if not remote.startswith(folder):
            continue
        relative = PurePosixPath(remote[len(folder):])
        parts = relative.parts
        if (not parts or relative.is_absolute() or any(p in ("..", ".") for p in parts)
                or any("\\" in p or "\x00" in p for p in parts)):
            raise PeerwebError(f"refusing a file path that could leave {dest}: {remote!r}")
        planned.append(Planned(remote, dest.joinpath(*parts), int(entry["size"])))
    return planned


def _get_tree(client: NodeClient, parsed: Address, dest: Path, out: Output) -> None:
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} is a file; a folder is written into a directory")
    listing_client = NodeClient(client.data_dir, timeout=LISTING_TIMEOUT)
    if parsed.target is Target.SITE:
        listing = listing_client.files(site_id=parsed.ident)
    else:
        listing = listing_client.files(infohash=parsed.ident)
    folder = unquote(parsed.path).lstrip("/")
    planned = plan_tree(listing["files"], folder, dest)
    if not planned:
        raise NotFound(f"no files under /{folder} in this site")
    base = f"{client.gateway}/ih/{listing['infohash']}/"
    total = sum(p.size for p in planned)
    done = 0
    with progress_bar(out, "fetching", total, "{task.fields[files]}") as bar:
        for count, item in enumerate(planned, 1):
            item.local.parent.mkdir(parents=True, exist_ok=True)
            done += fetch(base + quote(item.remote), item.local, client.gateway,
                          _Offset(bar, done, total,
                                  f"{count}/{plural(len(planned), 'file')}"))
            if out.json:
                out.record({"path": str(item.local), "file": item.remote, "size": item.size})
    out.text(f"wrote {plural(len(planned), 'file')} ({human(total)}) to {dest}", err=True)


class _Offset:
    """A bar for one file of many: moves the whole fetch's bar."""

    def __init__(self, bar: Bar, before: int, total: int, files: str) -> None:
        self._bar, self._before, self._total, self._files = bar, before, total, files

    def update(self, completed: float, total: float | None = None, **fields: Any) -> None:
        self._bar.update(self._before + completed, self._total, files=self._files)


def fetch(url: str, output: Path | None, gateway: str, bar: Bar | None = None) -> int:
    """Copy one gateway answer into ``output`` (through ``output.part``, so a failure never
    leaves a truncated file), or to stdout; the number of bytes written."""
    partial = output.with_name(output.name + ".part") if output is not None else None
    try:
        with urllib.request.urlopen(url, timeout=GATEWAY_TIMEOUT) as response:
            expected = response.headers.get("Content-Length")
            if partial is None:
                received = _to_stdout(response)
            else:
                if bar is not None and expected is not None:
                    bar.update(0, int(expected))
                with open(partial, "wb") as sink:
                    received = _copy(response, sink, bar)
        if expected is not None and received != int(expected):
            # The gateway cuts a stream rather than send a byte it could not verify.
            raise SwarmTimeout(f"the transfer stopped after {received} of {expected} bytes "
                               "(the swarm could not deliver the rest in time); try again")
        if partial is not None and output is not None:
            partial.replace(output)
        return received
    except urllib.error.HTTPError as exc:
        raise error_from(None, f"HTTP {exc.code} for {url}: {_error_text(exc)}",
                         exc.code) from None
    except (urllib.error.URLError, ConnectionError) as exc:
        raise NodeNotRunning(f"the node's gateway at {gateway} does not answer ({exc}); is "
                             "it running?") from None
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)


def _to_stdout(response: Any) -> int:
    sink = sys.stdout.buffer
    if not sink.isatty():
        return _copy(response, sink, None)
    ctype = response.headers.get("Content-Type", "application/octet-stream")
    first = response.read(COPY_CHUNK)
    if not is_text(ctype) or b"\x00" in first:
        raise UsageError(f"that file is binary ({ctype.split(';')[0]}); not writing it to "
                         "the terminal: use -o FILE, or -O to keep its name")
    sink.write(first)
    return len(first) + _copy(response, sink, None)


def is_text(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return kind.startswith("text/") or kind in _TEXT_TYPES or kind.endswith("+json")


def _copy(source: Any, target: BinaryIO, bar: Bar | None) -> int:
    total = 0
    while chunk := source.read(COPY_CHUNK):
        target.write(chunk)
        total += len(chunk)
        if bar is not None:
            bar.update(total)
    target.flush()
    return total


def _error_text(exc: urllib.error.HTTPError) -> str:
    """The message of a gateway error page, without its markup."""
    with exc:
        text = exc.read().decode(errors="replace")
    found = re.search(r"<p>(.*?)</p>", text)
    return html.unescape(found.group(1)) if found else str(exc.reason)


COMMANDS = (get,)
