"""Publishing speed: hashing a large folder into a hybrid torrent, against sha256sum.

A hybrid torrent needs SHA-1 (v1 pieces) and SHA-256 (v2 merkle tree) over every byte, so the
floor is roughly sha1sum + sha256sum over the same files; both are measured here, with
`bundle.build` (copy into the store + hash) and the hash step alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libtorrent as lt

from bench.common import write_result
from peerweb.content.folder import piece_size_for
from peerweb.swarm import build as bundle

SIZE = int(os.environ.get("PEERWEB_BENCH_PUBLISH_MB", "1024")) * 1024 * 1024
FILES = 8


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=600)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "site"
        folder.mkdir()
        (folder / "index.html").write_text("big site")
        chunk = os.urandom(1 << 20)
        for i in range(FILES):
            with open(folder / f"part{i}.bin", "wb") as out:
                for _ in range(SIZE // FILES // len(chunk)):
                    out.write(chunk)
        files = sorted(str(p) for p in folder.iterdir())
        timed(["cat", *files])  # warm the page cache for everyone alike
        sha256 = timed(["sha256sum", *files])
        sha1 = timed(["sha1sum", *files])

        start = time.perf_counter()
        creator = lt.create_torrent(lt.list_files(str(folder)), piece_size_for(SIZE))
        lt.set_piece_hashes(creator, str(folder.parent))
        hash_only = time.perf_counter() - start

        start = time.perf_counter()
        built = bundle.build(folder, Path(tmp) / "store")
        publish = time.perf_counter() - start
        assert built.total_size >= SIZE
    gb = SIZE / 1e9
    print(f"{gb:.2f} GB in {FILES} files")
    print(f"sha256sum {sha256:.2f} s, sha1sum {sha1:.2f} s, sum {sha256 + sha1:.2f} s")
    print(f"hybrid torrent hashing {hash_only:.2f} s -> {hash_only / sha256:.2f}x sha256sum, "
          f"{hash_only / (sha256 + sha1):.2f}x sha256sum+sha1sum")
    print(f"full publish (copy + hash) {publish:.2f} s -> {publish / sha256:.2f}x sha256sum")
    write_result("publish_hash", {
        "bytes": SIZE, "files": FILES, "sha256sum_s": sha256, "sha1sum_s": sha1,
        "hash_only_s": hash_only, "publish_s": publish,
        "hash_vs_sha256sum": hash_only / sha256, "publish_vs_sha256sum": publish / sha256,
        "python": sys.version.split()[0],
    })


if __name__ == "__main__":
    main()
