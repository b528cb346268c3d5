"""Block the network for every Python process of the test run (scripts/test puts this on
PYTHONPATH, so pytest, the notebook kernels nbval starts and their children all load it).

Loopback (127.0.0.0/8, ::1, localhost) and Unix sockets stay open: JupyterLab, the kernels'
channels and the browser test use them. Anything else fails at once with
``OSError("coursekit tests: network blocked ...")``, so a lesson or a test that tries to
download something fails loudly instead of depending on the network.
tests/core/test_no_network.py checks that the guard is active.
"""

import ipaddress
import os
import socket

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what, host):
    raise OSError(f"coursekit tests: network blocked ({what} {host!r}); only loopback is allowed")


def _install():
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_sendto, real_getaddrinfo = socket.socket.sendto, socket.getaddrinfo

    def _check(sock, address, what):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            _refuse(what, address[0])

    def connect(self, address):
        _check(self, address, "connect to")
        return real_connect(self, address)

    def connect_ex(self, address):
        _check(self, address, "connect to")
        return real_connect_ex(self, address)

    def sendto(self, data, *args):
        _check(self, args[-1], "send to")
        return real_sendto(self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _is_local(host):
            _refuse("resolve", host)
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.socket.sendto, socket.getaddrinfo = sendto, getaddrinfo
    os.environ["COURSEKIT_NETWORK_BLOCKED"] = "1"


if os.environ.get("COURSEKIT_BLOCK_NETWORK") == "1":
    _install()


def _watch_kernel(folder: str, seconds: float = 120.0) -> None:
    """``COURSEKIT_STALL_DUMP=DIR``: a notebook kernel alive after ``seconds`` writes every
    thread's Python stack to DIR/kernel-PID.txt, and again every ``seconds`` (faulthandler's
    watchdog is a C thread: it writes even while another thread holds the GIL). No lesson
    needs two minutes, so a file there is a stall caught in the act."""
    try:
        with open("/proc/self/cmdline", "rb") as f:
            if b"ipykernel" not in f.read():
                return
    except OSError:
        return
    import faulthandler

    os.makedirs(folder, exist_ok=True)
    out = open(os.path.join(folder, f"kernel-{os.getpid()}.txt"), "w")  # noqa: SIM115
    faulthandler.dump_traceback_later(seconds, repeat=True, file=out)


if os.environ.get("COURSEKIT_STALL_DUMP"):
    _watch_kernel(os.environ["COURSEKIT_STALL_DUMP"],
                  float(os.environ.get("COURSEKIT_STALL_SECONDS", "120")))
