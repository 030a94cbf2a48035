"""A crowd of plain HTTP visitors, run as a process of its own.

Each visitor is a curl process that asks ``--base`` for every file of a site folder
(``--parallel`` transfers at once, following redirects); the bytes are compared with the
folder's once the whole crowd is done. With several ``--base``, visitor i asks the i-th
(round robin): each visitor its own gateway.

The crowd runs outside the process under test because starting 200 processes from an event
loop stalls that loop for seconds: visitors are other machines, and must not slow the servers
they measure.

Prints one JSON object: {"times_s": [...successful page times], "errors": N, "wall_s": T,
"cpu_s": CPU seconds the crowd and its curl processes used}."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path


async def crowd(bases: list[str], folder: Path, visitors: int, parallel: int, work: Path,
                max_time: float = 300.0) -> dict[str, object]:
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    expected = {name: (folder / name).read_bytes() for name in files}

    async def page(visitor: int) -> tuple[float, int | None]:
        out = work / f"visitor{visitor}"
        command = ["curl", "--silent", "--location", "--fail", "--max-time", str(max_time),
                   "--parallel", "--parallel-immediate", "--parallel-max", str(parallel),
                   "--create-dirs"]
        for name in files:
            command += ["--output", str(out / name), f"{bases[visitor % len(bases)]}/{name}"]
        start = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await process.wait()
        return time.perf_counter() - start, process.returncode

    began = time.perf_counter()
    loads = await asyncio.gather(*(page(v) for v in range(visitors)))
    wall = time.perf_counter() - began
    spent = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    # Pages are checked once every visitor is done, so checking costs the servers nothing.
    times: list[float] = []
    errors = 0
    for visitor, (elapsed, code) in enumerate(loads):
        out = work / f"visitor{visitor}"
        if code == 0 and all((out / name).is_file() and (out / name).read_bytes() == data
                             for name, data in expected.items()):
            times.append(elapsed)
        else:
            errors += 1
        shutil.rmtree(out, ignore_errors=True)
    return {"times_s": times, "errors": errors, "wall_s": wall,
            "cpu_s": sum(r.ru_utime + r.ru_stime for r in spent)}


async def run(base: str | list[str], folder: Path, visitors: int, parallel: int,
              timeout: float) -> dict[str, object]:
    """Run the crowd in a child process (from a process under test); bounded by ``timeout``."""
    bases = [base] if isinstance(base, str) else base
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.visitors",
        *(arg for b in bases for arg in ("--base", b)), "--site", str(folder),
        "--visitors", str(visitors), "--max-time", str(max(1.0, timeout - 10)),
        "--parallel", str(parallel), stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"the visitor crowd failed (exit {process.returncode})")
    result: dict[str, object] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, action="append",
                        help="URL the site's files are under (repeatable)")
    parser.add_argument("--site", required=True, type=Path, help="the site folder")
    parser.add_argument("--visitors", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=6)
    parser.add_argument("--max-time", type=float, default=300.0,
                        help="seconds a visitor may take before it counts as failed")
    args = parser.parse_args()
    # Pages land in memory where the machine has a tmpfs: writing 200 pages to a disk cost the
    # crowd more than the servers it measures (nginx alone: p95 3.9 s on disk, 2.1 s in RAM).
    shm = Path("/dev/shm")
    where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="bench-visitors-", dir=where) as work:
        result = asyncio.run(crowd(args.base, args.site, args.visitors, args.parallel,
                                   Path(work), args.max_time))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
