"""The command line against a real node process: what a user types, what they see."""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from peerweb.content import bencode

from ..waiting import wait_until_sync

STARTUP_TIMEOUT = 20.0


def peerweb(*args: str, data_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "peerweb", *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"peerweb {args} failed: {result.stderr}")
    return result


def start_node(data_dir: Path, log: Path, *extra: str,
               preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "a") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "peerweb", "node", "--data-dir", str(data_dir),
             "--gateway", "127.0.0.1:0", *extra],
            stdout=output, stderr=subprocess.STDOUT, preexec_fn=preexec_fn,
        )
    try:
        wait_until_sync(lambda: (data_dir / "node.json").exists() or process.poll() is not None,
                        STARTUP_TIMEOUT, "the node to start")
    finally:
        if not (data_dir / "node.json").exists():
            process.kill()
            process.wait(timeout=10)
            raise AssertionError(f"node did not start: {log.read_text()}")
    return process


def holds_every_piece(resume: Path) -> bool:
    """Whether libtorrent's resume file says the torrent completed and holds every piece
    (``pieces`` is a bitfield: set bits, then only the padding of its last byte)."""
    try:
        resume_data = bencode.decode(resume.read_bytes())
        pieces, completed = resume_data[b"pieces"], resume_data[b"completed_time"]
    except (OSError, ValueError, KeyError):
        return False  # not written yet, or being replaced
    bits = "".join(f"{byte:08b}" for byte in pieces).rstrip("0")
    return bool(completed) and bool(bits) and "0" not in bits


@pytest.fixture
def node_process(tmp_path):
    data_dir = tmp_path / "data"
    process = start_node(data_dir, tmp_path / "node.log", "--swarm", "127.0.0.31:0")
    yield process, data_dir
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def site_status(data_dir: Path, site_id: str) -> dict:
    status = json.loads(peerweb("status", "--json", data_dir=data_dir).stdout)
    return next(s for s in status["sites"] if s["site_id"] == site_id)


def test_kill_9_and_restart_keep_the_site_without_fetching_it_again(node_process, tmp_path):
    from peerweb.tools.testnet import write_sample_site

    _, publisher_dir = node_process
    contents = write_sample_site(tmp_path / "site", small_files=10, big_size=4 * 1024 * 1024)
    site_id = json.loads(peerweb("publish", str(tmp_path / "site"), "--json",
                                 data_dir=publisher_dir).stdout)["site_id"]
    swarm = json.loads(peerweb("status", "--json", data_dir=publisher_dir).stdout)["listen"]

    visitor_dir = tmp_path / "visitor"
    log = tmp_path / "visitor.log"
    args = ("--listen", "127.0.0.32:0", "--bootstrap", swarm)
    visitor = start_node(visitor_dir, log, *args)
    try:
        peerweb("get", f"{site_id}/index.html", data_dir=visitor_dir)
        wait_until_sync(lambda: site_status(visitor_dir, site_id).get("progress") == 1.0, 60,
                        "the visitor to complete the site")
        infohash = site_status(visitor_dir, site_id)["infohash"]
        resume = visitor_dir / "resume" / f"{infohash}.resume"
        wait_until_sync(lambda: holds_every_piece(resume), 30,
                        "resume data that records every piece")
        visitor.kill()  # SIGKILL: no shutdown code runs
        visitor.wait(timeout=10)
        (visitor_dir / "node.json").unlink()  # what a killed node leaves behind

        started = time.monotonic()
        visitor = start_node(visitor_dir, log, *args)
        out = tmp_path / "big.bin"
        peerweb("get", f"{site_id}/media/big.bin", "-o", str(out), data_dir=visitor_dir)
        assert out.read_bytes() == contents["media/big.bin"]
        print(f"restart to first file served: {time.monotonic() - started:.2f} s")
        after = site_status(visitor_dir, site_id)
        assert after["progress"] == 1.0 and after["version"] == 1
        # The publisher is still there, yet the restarted node fetched nothing again: what
        # it received since the restart is DHT chatter, not the 4 MB site.
        received = json.loads(peerweb("status", "--json", data_dir=visitor_dir).stdout)
        assert received["downloaded"] < 200_000, received["downloaded"]
    finally:
        if visitor.poll() is None:
            visitor.kill()
            visitor.wait(timeout=10)


def small_disk() -> None:
    """In the child: files may not grow past 1 MB, as on a disk that is nearly full (the
    write fails with EFBIG instead of ENOSPC; libtorrent takes the same path for both)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))


def test_a_full_disk_stops_that_download_and_nothing_else(node_process, tmp_path):
    from peerweb.tools.testnet import write_sample_site

    publisher, publisher_dir = node_process
    contents = write_sample_site(tmp_path / "big", small_files=2, big_size=3 * 1024 * 1024)
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "index.html").write_text("<h1>small</h1>")
    big = json.loads(peerweb("publish", str(tmp_path / "big"), "--key", "big", "--json",
                             data_dir=publisher_dir).stdout)["site_id"]
    small = json.loads(peerweb("publish", str(tmp_path / "small"), "--key", "small", "--json",
                               data_dir=publisher_dir).stdout)["site_id"]
    swarm = json.loads(peerweb("status", "--json", data_dir=publisher_dir).stdout)["listen"]

    visitor_dir = tmp_path / "visitor"
    visitor = start_node(visitor_dir, tmp_path / "visitor.log", "--listen", "127.0.0.33:0",
                         "--bootstrap", swarm, preexec_fn=small_disk)
    try:
        out = tmp_path / "out"
        first = peerweb("get", f"{big}/media/big.bin", "-o", str(out), data_dir=visitor_dir,
                        check=False)
        # Pieces still in libtorrent's write buffer may be served before the write fails;
        # whatever arrives is verified. Then the download stops with the disk error shown.
        if first.returncode == 0:
            assert out.read_bytes() == contents["media/big.bin"]
        else:  # a clear error, and no truncated file left behind
            assert "507" in first.stderr or "stopped after" in first.stderr, first.stderr
            assert not out.exists()
        wait_until_sync(lambda: "error" in site_status(visitor_dir, big), 30,
                        "the disk error to show in status")
        failed = peerweb("get", f"{big}/media/big.bin", "-o", str(out), data_dir=visitor_dir,
                         check=False)
        assert failed.returncode == 1 and "507" in failed.stderr
        assert "free disk space" in failed.stderr  # says what to do next
        # The node is still up and serves other sites.
        page = peerweb("get", f"{small}/", data_dir=visitor_dir).stdout
        assert page == "<h1>small</h1>"
        assert visitor.poll() is None
    finally:
        visitor.kill()
        visitor.wait(timeout=10)


def test_publish_status_get_and_stop(node_process, tmp_path):
    process, data_dir = node_process
    site = tmp_path / "my-site"
    (site / "css").mkdir(parents=True)
    (site / "index.html").write_text("<h1>hello from the cli</h1>")
    (site / "css" / "a.css").write_text("h1{color:red}")

    published = json.loads(peerweb("publish", str(site), "--json", data_dir=data_dir).stdout)
    assert published["version"] == 1 and len(published["site_id"]) == 52
    assert published["magnet"].startswith("magnet:?xs=urn:btpk:")
    assert published["url"].startswith(f"http://{published['site_id']}.localhost:")

    # The same bytes again: same version; changed bytes: the next one.
    again = json.loads(peerweb("publish", str(site), "--json", data_dir=data_dir).stdout)
    assert again["version"] == 1 and again["infohash"] == published["infohash"]
    (site / "index.html").write_text("<h1>second</h1>")
    second = json.loads(peerweb("publish", str(site), "--json", data_dir=data_dir).stdout)
    assert second["version"] == 2 and second["site_id"] == published["site_id"]
    history_lines = peerweb("log", published["site_id"], "--json", data_dir=data_dir).stdout
    history = [json.loads(line) for line in history_lines.splitlines()]  # newest first
    assert [(e["version"], e["current"]) for e in history] == [(2, True), (1, False)]
    assert history[0]["changed"] == ["index.html"]
    text = peerweb("log", published["site_id"], data_dir=data_dir).stdout
    assert "v2" in text and "(current)" in text and "1 file changed: index.html" in text
    assert text.index("v2") < text.index("v1")  # newest first, as --json lists them

    status = json.loads(peerweb("status", "--json", data_dir=data_dir).stdout)
    assert [s["site_id"] for s in status["sites"]] == [published["site_id"]]
    assert status["sites"][0]["version"] == 2 and status["network"] == "local"

    out = tmp_path / "a.css"
    peerweb("get", f"{published['site_id']}/css/a.css", "-o", str(out), data_dir=data_dir)
    assert out.read_text() == "h1{color:red}"
    page = peerweb("get", published["site_id"], data_dir=data_dir).stdout
    assert page == "<h1>second</h1>"
    missing = peerweb("get", f"{published['site_id']}/nope", data_dir=data_dir, check=False)
    assert missing.returncode == 1 and "404" in missing.stderr

    assert "pinned" in peerweb("pin", published["site_id"], data_dir=data_dir).stdout
    status = json.loads(peerweb("status", "--json", data_dir=data_dir).stdout)
    assert status["sites"][0]["pinned"] is True
    peerweb("unpin", published["site_id"], data_dir=data_dir)
    unknown = peerweb("pin", "a" * 52, data_dir=data_dir, check=False)
    assert unknown.returncode == 1 and "visit it first" in unknown.stderr

    keys = peerweb("key", "list", "--json", data_dir=data_dir).stdout
    assert [json.loads(line) for line in keys.splitlines()] == [
        {"name": "my-site", "site_id": published["site_id"]}]

    # Secrets are private to the user; the API refuses callers without the token.
    for secret in (data_dir / "api-token", data_dir / "keys" / "my-site.key"):
        assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    api = json.loads((data_dir / "node.json").read_text())["api"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(api + "/v1/status", timeout=10)
    assert refused.value.code == 401
    refused.value.close()

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert not (data_dir / "node.json").exists()


def test_clear_errors(node_process, tmp_path):
    _, data_dir = node_process
    empty = tmp_path / "empty"
    empty.mkdir()
    result = peerweb("publish", str(empty), data_dir=data_dir, check=False)
    assert result.returncode == 1 and "no files to publish" in result.stderr
    no_index = tmp_path / "noindex"
    no_index.mkdir()
    (no_index / "a.txt").write_text("x")
    result = peerweb("publish", str(no_index), data_dir=data_dir, check=False)
    assert result.returncode == 1 and "--no-index" in result.stderr
    assert peerweb("publish", str(no_index), "--no-index", data_dir=data_dir).returncode == 0

    other = peerweb("status", data_dir=tmp_path / "nothing-here", check=False)
    assert other.returncode == 1 and "no node is running" in other.stderr
    bad = peerweb("get", "not-a-site-id/x", data_dir=data_dir, check=False)
    assert bad.returncode == 1 and "site id" in bad.stderr


def test_help_reads_well():
    result = subprocess.run([sys.executable, "-m", "peerweb", "--help"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0
    for command in ("node", "publish", "status", "get", "key", "testnet", "log", "export",
                    "tracker", "origin", "volunteer", "redirector", "pin"):
        assert command in result.stdout
    key_help = subprocess.run([sys.executable, "-m", "peerweb", "key", "--help"],
                              capture_output=True, text=True, timeout=30).stdout
    assert "never be updated again" in key_help and "key export" in key_help


def test_key_export_and_import_between_data_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("PEERWEB_PASSPHRASE", "a long passphrase")
    made = peerweb("key", "new", "blog", data_dir=tmp_path / "a").stdout.split()
    backup = tmp_path / "blog.pem"
    peerweb("key", "export", "blog", "-o", str(backup), data_dir=tmp_path / "a")
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    again = peerweb("key", "export", "blog", "-o", str(backup), data_dir=tmp_path / "a",
                    check=False)
    assert again.returncode == 1 and "exists" in again.stderr
    imported = peerweb("key", "import", "blog", str(backup), data_dir=tmp_path / "b")
    assert imported.stdout.split() == made
    monkeypatch.setenv("PEERWEB_PASSPHRASE", "not the passphrase")
    wrong = peerweb("key", "import", "other", str(backup), data_dir=tmp_path / "c",
                    check=False)
    assert wrong.returncode == 1 and "wrong passphrase" in wrong.stderr


def test_testnet_serves_the_example_site_and_stops_on_ctrl_c(tmp_path):
    log = tmp_path / "testnet.log"
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "peerweb", "testnet", "--nodes", "3", "--base-port", "0",
             "--data-dir", str(tmp_path / "net")],
            stdout=output, stderr=subprocess.STDOUT)
    try:
        def ready() -> bool:
            assert process.poll() is None, log.read_text()
            return "Press Ctrl-C" in log.read_text()

        wait_until_sync(ready, 60, "the test network to start")
        urls = [line.split()[2] for line in log.read_text().splitlines()
                if line.strip().startswith("node ")]
        assert len(urls) == 3
        for url in urls[1:]:  # nodes that did not publish fetch it through the swarm
            host, port = url.split("//")[1].rstrip("/").split(":")
            request = urllib.request.Request(f"http://127.0.0.1:{port}/",
                                             headers={"Host": f"{host}:{port}"})
            with urllib.request.urlopen(request, timeout=30) as response:
                assert b"This page came from a swarm" in response.read()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def ndjson(text: str) -> list[dict]:
    """The --json convention: every line one compact JSON object, nothing else."""
    parsed = [json.loads(line) for line in text.splitlines()]
    for line, obj in zip(text.splitlines(), parsed, strict=True):
        assert isinstance(obj, dict) and line == json.dumps(obj, separators=(",", ":")), line
    return parsed


def json_error(result: subprocess.CompletedProcess[str], kind: str) -> str:
    """A failure under --json: non-zero exit, nothing on stdout, one object on stderr."""
    assert result.returncode != 0 and result.stdout == "", result
    [error] = ndjson(result.stderr)
    assert error["kind"] == kind, error
    return str(error["error"])


def write_tree(root: Path) -> dict[str, bytes]:
    files = {"index.html": b"<h1>tree</h1>", "about/index.html": b"<p>about</p>",
             "css/site.css": b"h1{color:red}", "media/noise.bin": os.urandom(300_000),
             "media/deep/er/empty.txt": b"", "name with space.txt": "é\n".encode()}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def test_every_command_prints_ndjson_and_stop_ends_the_node(node_process, tmp_path,
                                                            monkeypatch):
    process, data_dir = node_process
    site = tmp_path / "site"
    write_tree(site)

    [published] = ndjson(peerweb("publish", str(site), "--json", data_dir=data_dir).stdout)
    site_id = published["site_id"]
    assert published["files"] == 6 and published["version"] == 1
    [status] = ndjson(peerweb("status", "--json", data_dir=data_dir).stdout)
    assert status["sites"][0]["site_id"] == site_id
    [entry] = ndjson(peerweb("log", site_id, "--json", data_dir=data_dir).stdout)
    assert entry["version"] == 1 and entry["current"] is True
    assert ndjson(peerweb("pin", site_id, "--json", data_dir=data_dir).stdout) == [
        {"site_id": site_id, "pinned": True}]
    assert ndjson(peerweb("unpin", site_id, "--json", data_dir=data_dir).stdout) == [
        {"site_id": site_id, "pinned": False}]
    torrent = tmp_path / "site.torrent"
    [exported] = ndjson(peerweb("export", site_id, "-o", str(torrent), "--json",
                                data_dir=data_dir).stdout)
    assert exported["path"] == str(torrent) and torrent.exists()
    assert exported["magnet"].startswith("magnet:?")
    page = tmp_path / "page.html"
    [got] = ndjson(peerweb("get", f"{site_id}/about/", "-o", str(page), "--json",
                           data_dir=data_dir).stdout)
    assert got["size"] == 12 and page.read_bytes() == b"<p>about</p>"
    tree = ndjson(peerweb("get", f"{site_id}/", "-o", str(tmp_path / "copy"), "--json",
                          data_dir=data_dir).stdout)
    assert sorted(r["file"] for r in tree) == sorted(
        ["index.html", "about/index.html", "css/site.css", "media/noise.bin",
         "media/deep/er/empty.txt", "name with space.txt"])
    [made] = ndjson(peerweb("key", "new", "spare", "--json", data_dir=data_dir).stdout)
    assert {k["name"] for k in ndjson(peerweb("key", "list", "--json",
                                              data_dir=data_dir).stdout)} == {"site", "spare"}
    [removed] = ndjson(peerweb("key", "rm", "spare", "--yes", "--json",
                               data_dir=data_dir).stdout)
    assert removed == {**made, "removed": True}

    # Errors under --json, from the CLI, the control API and the gateway alike.
    json_error(peerweb("get", f"{site_id}/nope", "-o", str(tmp_path / "x"), "--json",
                       data_dir=data_dir, check=False), "not_found")
    json_error(peerweb("pin", "a" * 52, "--json", data_dir=data_dir, check=False), "not_found")
    assert "all zeros" in json_error(peerweb("get", "0" * 40, "-o", str(tmp_path / "z"),
                                             "--json", data_dir=data_dir, check=False),
                                     "bad_address")
    json_error(peerweb("get", site_id, "--json", data_dir=data_dir, check=False), "usage")
    json_error(peerweb("publish", str(tmp_path / "missing"), "--json", data_dir=data_dir,
                       check=False), "usage")

    # The global options before the command name work as after it.
    before = subprocess.run([sys.executable, "-m", "peerweb", "--data-dir", str(data_dir),
                             "--json", "status"], capture_output=True, text=True, timeout=60)
    assert ndjson(before.stdout)[0]["sites"][0]["site_id"] == site_id

    [stopped] = ndjson(peerweb("stop", "--json", data_dir=data_dir).stdout)
    assert stopped == {"stopped": True, "pid": process.pid}
    assert process.wait(timeout=30) == 0
    assert not (data_dir / "node.json").exists()
    json_error(peerweb("status", "--json", data_dir=data_dir, check=False), "node_not_running")


def test_get_a_folder_writes_every_file_byte_exact(node_process, tmp_path, monkeypatch):
    _, data_dir = node_process
    site = tmp_path / "site"
    files = write_tree(site)
    site_id = json.loads(peerweb("publish", str(site), "--json", data_dir=data_dir).stdout)[
        "site_id"]
    copy = tmp_path / "copy"
    result = peerweb("get", f"{site_id}/", "-o", str(copy), data_dir=data_dir)
    assert "wrote 6 files" in result.stderr
    written = {str(p.relative_to(copy)): p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    assert written == files
    # Again into the same directory (an update), then a sub-folder alone, kept by name.
    peerweb("get", f"{site_id}/", "-o", str(copy), data_dir=data_dir)
    monkeypatch.chdir(tmp_path)
    peerweb("get", f"{site_id}/media/", "-O", data_dir=data_dir)
    assert (tmp_path / "media" / "noise.bin").read_bytes() == files["media/noise.bin"]
    assert (tmp_path / "media" / "deep" / "er" / "empty.txt").read_bytes() == b""
    peerweb("get", f"{site_id}/css/site.css", "-O", data_dir=data_dir)
    assert (tmp_path / "site.css").read_bytes() == files["css/site.css"]
    # The documented one-page form still writes the page alone.
    peerweb("get", f"{site_id}/about/index.html", "-o", str(tmp_path / "about.html"),
            data_dir=data_dir)
    assert (tmp_path / "about.html").read_bytes() == files["about/index.html"]
    assert not list(tmp_path.rglob("*.part"))


def on_a_terminal(*args: str, data_dir: Path, stdin: bytes = b"") -> tuple[int, str]:
    """Run peerweb with stdout and stderr on a pseudo-terminal; its exit status and what the
    terminal showed."""
    master, slave = os.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen([sys.executable, "-m", "peerweb", *args, "--data-dir",
                                str(data_dir)], stdin=subprocess.DEVNULL, stdout=slave,
                               stderr=slave, env=env)
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)  # blocks until output, EIO once the child is gone
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return process.wait(timeout=30), shown.decode(errors="replace")


def test_progress_on_a_terminal_and_not_in_a_pipe(node_process, tmp_path):
    _, data_dir = node_process
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>big</h1>")
    big = os.urandom(8 * 1024 * 1024)
    (site / "big.bin").write_bytes(big)

    status, shown = on_a_terminal("publish", str(site), "--key", "big", data_dir=data_dir)
    assert status == 0, shown
    assert "hashing" in shown and "pieces" in shown and "MB" in shown and "━" in shown
    assert "published 2 files" in shown
    piped = peerweb("publish", str(site), "--key", "big", data_dir=data_dir)
    assert "hashing" not in piped.stderr and "━" not in piped.stderr + piped.stdout

    site_id = json.loads(peerweb("key", "list", "--json", data_dir=data_dir).stdout)["site_id"]
    out = tmp_path / "big.out"
    status, shown = on_a_terminal("get", f"{site_id}/big.bin", "-o", str(out),
                                  data_dir=data_dir)
    assert status == 0 and out.read_bytes() == big, shown
    assert "8.4/8.4 MB" in shown and "━" in shown
    out.unlink()
    piped = peerweb("get", f"{site_id}/big.bin", "-o", str(out), data_dir=data_dir)
    assert out.read_bytes() == big and "━" not in piped.stderr
    status, shown = on_a_terminal("get", f"{site_id}/", "-o", str(tmp_path / "tree"),
                                  data_dir=data_dir)
    assert status == 0 and "2/2 files" in shown, shown
    status, shown = on_a_terminal("export", site_id, "-o", str(tmp_path / "t.torrent"),
                                  data_dir=data_dir)
    assert status == 0 and "wrote" in shown, shown

    # Binary never goes to a terminal; text does; a pipe takes either.
    status, shown = on_a_terminal("get", f"{site_id}/big.bin", data_dir=data_dir)
    assert status == 1 and "binary" in shown and "-o" in shown
    status, shown = on_a_terminal("get", site_id, data_dir=data_dir)
    assert status == 0 and "<h1>big</h1>" in shown
    raw = subprocess.run([sys.executable, "-m", "peerweb", "get", f"{site_id}/big.bin",
                          "--data-dir", str(data_dir)], capture_output=True, timeout=60)
    assert raw.returncode == 0 and raw.stdout == big
