"""Loaded by every Python process of the test run (pytest, notebook kernels, the book build).

``tests/conftest.py`` puts this folder first on ``PYTHONPATH``, so Python imports this module at
start-up. It makes any network connection that leaves the machine fail: ``socket.connect`` and
name look-ups are refused unless they stay on this machine (loopback and Unix sockets, which the
notebook kernels use). Each refused attempt is appended to the file named by
``$MMTUTOR_NETLOG``; the test run fails the test during which the file grew.
"""

from __future__ import annotations

import os
import socket

_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "", None}


def _is_local(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    return host in _LOCAL_NAMES or (isinstance(host, str) and (host.startswith("127.") or host == "ip6-localhost"))


def _refuse(what: str) -> None:
    log = os.environ.get("MMTUTOR_NETLOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"pid {os.getpid()}: {what}\n")
    raise ConnectionRefusedError(f"network access is blocked during the tests: {what}")


_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):  # type: ignore[index]
        _refuse(f"connect to {address!r}")
    return _connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):  # type: ignore[index]
        _refuse(f"connect_ex to {address!r}")
    return _connect_ex(self, address)


def _guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> list:
    if not _is_local(host):
        _refuse(f"name look-up of {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
