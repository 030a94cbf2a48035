"""The network test bed (peerweb.tools.netbed) as fixtures: skipped, saying why, on a machine
without root, namespaces or nftables."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from peerweb.tools.netbed import NetBed, unavailable_reason

# Accepts connections on PORT and answers with the address it saw the connection come from.
WHO_SERVER = (
    "import socket,sys\n"
    "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "s.bind(('0.0.0.0',int(sys.argv[1])));s.listen()\n"
    "while True:\n"
    " c,a=s.accept();c.sendall(a[0].encode());c.close()\n")
WHO_CLIENT = (
    "import socket,sys\n"
    "try:\n"
    " c=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=float(sys.argv[3]))\n"
    " print(c.recv(100).decode())\n"
    "except OSError as e: print('FAIL',e)\n")


@pytest.fixture(scope="module")
def bed() -> Iterator[NetBed]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with NetBed() as built:
        yield built


def python() -> str:
    return sys.executable
