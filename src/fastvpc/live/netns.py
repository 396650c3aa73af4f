"""A lab of network namespaces acting as VMs, wired to the live switch with veth pairs.

``Lab(network)`` builds, for each ENI, a namespace (the VM) holding ``eth0`` with the ENI's
MAC, its IPs (primary and secondary, with the subnet's prefix length) and a default route
to the subnet's router (base+1); the other end of the veth pair stays in the current
namespace, named ``<tag>h<i>``, for :class:`fastvpc.live.Switch` to attach.  Gateways named
in ``gateways`` get a namespace too: an outside host with only ``eth0`` (the kernel's own MAC,
ARP on), the given address and a default route out of ``eth0`` (DESIGN §6: the switch answers
ARP there for any address with the gateway's MAC and learns the host's MAC from what it sends).

Every namespace has IPv6 disabled (no router/neighbour solicitations, no MLD reports); offloads
stay as veth has them (the switch completes the partial checksums veth hands it and cuts TSO/GSO
packets into MTU-sized segments).  The host ends have IPv6 disabled and ``arp off``, so the
host sends nothing on them.

Names: every run has a tag ``fv<pid:06x><rand:02x>``; namespaces are ``<tag>-<eni name>``
(made safe and distinct by :func:`namespace_parts`) and host links ``<tag>h<i>``, so parallel
runs never collide.  ``Lab.close()`` (also from
``__exit__``, and at interpreter exit) deletes every link and namespace it made and kills
every process it started; :func:`cleanup_leftovers` removes what runs whose process is gone
left behind.

Modes: as real root, namespaces are made with ``ip netns``.  Inside a user namespace
(``unshare --user --map-root-user --net``; euid 0 there but not root outside) ``ip netns``
cannot mount ``/run/netns``, so each namespace is held by a ``unshare --net sleep``
process and entered with ``nsenter``.  Without either, :class:`LabUnavailable` says what is
missing.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastvpc.errors import FastVpcError

__all__ = ["Lab", "LabUnavailable", "VmNamespace", "cleanup_leftovers", "lab_mode", "namespace_parts", "userns_argv"]

_TAG_RE = re.compile(r"^fv([0-9a-f]{6})([0-9a-f]{2})(?:h\d+|-.*)$")
_TOOLS = ("ip",)


class LabUnavailable(FastVpcError, RuntimeError):
    """Namespaces cannot be built here; the message names what is missing."""


def _in_user_namespace() -> bool:
    """Whether this process runs in a user namespace other than the initial one."""
    try:
        with open("/proc/self/uid_map") as fh:
            lines = fh.read().split()
    except OSError:
        return False
    return lines[:3] != ["0", "0", "4294967295"]


def lab_mode() -> str:
    """``"netns"`` (real root), ``"userns"`` (mapped root in a user namespace) or ``"none"``."""
    if os.geteuid() != 0:
        return "none"
    return "userns" if _in_user_namespace() else "netns"


def userns_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` wrapped to run as mapped root in fresh user and network namespaces.

    Raises :class:`LabUnavailable` when ``unshare`` is missing or unprivileged user
    namespaces are not allowed here.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        raise LabUnavailable("live labs need root, or `unshare` (util-linux) for an unprivileged user "
                             "namespace: unshare is not installed")
    probe = subprocess.run([unshare, "--user", "--map-root-user", "--net", "true"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise LabUnavailable("live labs need root or unprivileged user namespaces; "
                             f"`unshare --user --map-root-user --net true` failed: {probe.stderr.strip()} "
                             "(check kernel.unprivileged_userns_clone / user.max_user_namespaces, "
                             "or run as root)")
    return [unshare, "--user", "--map-root-user", "--net", *argv]


def _check_tools() -> None:
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    if missing:
        raise LabUnavailable(f"live labs need {', '.join(missing)} on PATH "
                             "(Debian/Ubuntu: apt-get install iproute2 ethtool iputils-ping iputils-arping)")


def _run(argv: Sequence[str], *, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(argv), input=input, capture_output=True, text=True, check=False)
    if check and res.returncode != 0:
        raise LabUnavailable(f"`{' '.join(argv)}` failed (exit {res.returncode}): "
                             f"{(res.stderr or res.stdout).strip()}")
    return res


def _netns_list() -> list[str]:
    """The names ``ip netns list`` shows (the first word of each line)."""
    res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in res.stdout.splitlines() if line.split()]


#: characters of an object's name kept in its namespace's name (after ``<tag>-``)
_NS_PART_LEN = 40
_NS_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def namespace_parts(names: Iterable[str]) -> dict[str, str]:
    """Object name -> what its namespace is called after ``<tag>-``: distinct for distinct names.

    The name with every character outside ``[A-Za-z0-9_.-]`` replaced by ``_``, cut to 40
    characters.  Where that makes several names one (``web/1`` and ``web_1``; two names equal in
    their first 40 characters), a name that the rule leaves as it was keeps it, and each of the
    others becomes its first 33 characters, ``.`` and 6 hex digits of the SHA-256 of the whole
    name (of the name and a counter, in the rare case that is taken too): the same names give
    the same namespaces on every run, and a namespace name stays within 51 characters
    (``<tag>`` is 10), far below Linux's 255 for the file ``ip netns`` makes.
    """
    import hashlib

    names = list(dict.fromkeys(names))
    safe = {n: _NS_UNSAFE.sub("_", n)[:_NS_PART_LEN] for n in names}
    uses: dict[str, int] = {}
    for part in safe.values():
        uses[part] = uses.get(part, 0) + 1
    out = {n: safe[n] for n in names if uses[safe[n]] == 1 or safe[n] == n}
    taken = set(out.values())
    for n in sorted(n for n in names if n not in out):
        k = 0
        while True:
            digest = hashlib.sha256(n.encode("utf-8", "surrogatepass") + (b"\0%d" % k if k else b"")).hexdigest()
            part = f"{_NS_UNSAFE.sub('_', n)[:_NS_PART_LEN - 7]}.{digest[:6]}"
            if part not in taken:
                break
            k += 1
        out[n] = part
        taken.add(part)
    return {n: out[n] for n in names}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _new_tag() -> str:
    return f"fv{os.getpid() & 0xFFFFFF:06x}{secrets.randbelow(256):02x}"


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the thread that started it ends, so a namespace
    holder never outlives a killed run (user-namespace mode has no names to clean up by)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _write_sysctl(path: str, value: str) -> None:
    try:
        with open(path, "w") as fh:
            fh.write(value)
    except OSError:
        pass  # no IPv6 in this kernel: nothing to disable


class VmNamespace:
    """One namespace of a lab: a VM (for an ENI) or a gateway's outside world."""

    def __init__(self, lab: Lab, name: str, host_if: str, mac: str, addrs: list[str],
                 gateway: str | None, obj: Any) -> None:
        self.lab = lab
        self.name = name
        self.host_if = host_if
        self.ifname = "eth0"
        self.mac = mac
        self.addrs = addrs            # "ip/len" strings, primary first
        self.gateway = gateway        # default route's next hop, or None
        self.obj = obj                # the ENI or gateway it stands for
        self.holder: subprocess.Popen[bytes] | None = None   # userns mode: the process keeping it

    @property
    def ip(self) -> str:
        return self.addrs[0].split("/")[0]

    @property
    def ref(self) -> str:
        """What ``ip link set ... netns`` takes: the name (netns mode) or the holder's pid."""
        return str(self.holder.pid) if self.holder is not None else self.name

    def argv(self, cmd: Sequence[str]) -> list[str]:
        """``cmd`` wrapped to run inside this namespace."""
        if self.holder is not None:
            return ["nsenter", "-t", str(self.holder.pid), "-n", "--", *cmd]
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, cmd: Sequence[str], *, timeout: float = 30, check: bool = False,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside the namespace and wait (text output captured)."""
        res = subprocess.run(self.argv(cmd), capture_output=True, text=True, timeout=timeout,
                             input=input, check=False)
        if check and res.returncode != 0:
            raise AssertionError(f"in {self.name}: `{' '.join(cmd)}` failed (exit {res.returncode}):\n"
                                 f"{res.stdout}{res.stderr}")
        return res

    def popen(self, cmd: Sequence[str], **kw: Any) -> subprocess.Popen[str]:
        """Start ``cmd`` inside the namespace; the lab kills it on close."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("text", True)
        proc: subprocess.Popen[str] = subprocess.Popen(self.argv(cmd), start_new_session=True, **kw)
        self.lab._procs.append(proc)
        return proc

    def python(self, code: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``python -c code args...`` (this interpreter) inside the namespace."""
        return self.run([sys.executable, "-c", code, *args], timeout=timeout)

    def __repr__(self) -> str:
        return f"<VmNamespace {self.name} {self.mac} {' '.join(self.addrs)} via {self.host_if}>"


_LABS: weakref.WeakSet[Lab] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for lab in list(_LABS):
        lab.close()


class Lab:
    """Namespaces with veth pairs standing for the ENIs (and chosen gateways) of a network.

    ``enis``: ENI objects or names (default: every ENI).  ``gateways``: gateway (or name) ->
    ``"ip/len"`` of its namespace's address.  ``attachments`` maps each port to its host
    interface, ready for ``Switch(dp, lab.attachments)``.
    """

    def __init__(self, network: Any, enis: Iterable[Any] | None = None,
                 gateways: Mapping[Any, str] | None = None, *, tag: str | None = None) -> None:
        self.network = network
        self.tag = tag or _new_tag()
        if not re.fullmatch(r"fv[0-9a-f]{8}", self.tag):
            raise ValueError(f"tag {self.tag!r} must look like fv + 8 hex digits")
        self.mode = lab_mode()
        self.vms: dict[str, VmNamespace] = {}
        self.gateways: dict[str, VmNamespace] = {}
        self._procs: list[subprocess.Popen[Any]] = []
        self._made_links: list[str] = []
        self._made_netns: list[str] = []
        self._closed = False
        self._built = False
        objs = [network.find(e) if isinstance(e, str) else e for e in (enis if enis is not None else network.enis)]
        gws = [(network.find(key) if isinstance(key, str) else key, addr) for key, addr in (gateways or {}).items()]
        self._ns_parts = namespace_parts([*(e.name for e in objs), *(g.name for g, _ in gws)])
        i = 0
        for eni in objs:
            sub = eni.subnet
            plen = sub.cidr.prefixlen
            addrs = [f"{ip}/{plen}" for ip in eni.ips]
            self.vms[eni.name] = VmNamespace(self, self._ns_name(eni.name), f"{self.tag}h{i}", eni.mac, addrs,
                                             str(sub.router_ip), eni)
            i += 1
        for gw, addr in gws:
            iface = ipaddress.IPv4Interface(addr)
            # the MAC is the kernel's own: read back once built
            self.gateways[gw.name] = VmNamespace(self, self._ns_name(gw.name), f"{self.tag}h{i}", "",
                                                 [str(iface.with_prefixlen)], None, gw)
            i += 1

    def _ns_name(self, obj_name: str) -> str:
        return f"{self.tag}-{self._ns_parts[obj_name]}"

    # ------------------------------------------------------------------ build / close
    @property
    def namespaces(self) -> list[VmNamespace]:
        return [*self.vms.values(), *self.gateways.values()]

    @property
    def attachments(self) -> dict[int, str]:
        """port -> host interface name, for :class:`fastvpc.live.Switch`."""
        return {ns.obj.port: ns.host_if for ns in self.namespaces}

    def __getitem__(self, name: str) -> VmNamespace:
        if name in self.vms:
            return self.vms[name]
        if name in self.gateways:
            return self.gateways[name]
        raise KeyError(f"lab {self.tag} has no namespace for {name!r} (has {', '.join(self.vms)}, "
                       f"{', '.join(self.gateways)})")

    def build(self) -> Lab:
        """Create every namespace and veth pair and configure them; on failure, undo it all."""
        if self._built:
            return self
        if self.mode == "none":
            raise LabUnavailable("live labs need root (CAP_NET_ADMIN and CAP_SYS_ADMIN), or to run inside "
                                 "`unshare --user --map-root-user --net` (see fastvpc.live.netns.userns_argv); "
                                 f"this process has euid {os.geteuid()}")
        _check_tools()
        if self.mode == "userns" and shutil.which("nsenter") is None:
            raise LabUnavailable("live labs in a user namespace need nsenter (util-linux) on PATH")
        _LABS.add(self)
        self._built = True
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        nss = self.namespaces
        if self.mode == "netns":
            names = [ns.name for ns in nss]
            before = set(_netns_list())
            try:
                _run(["ip", "-batch", "-"], input="".join(f"netns add {name}\n" for name in names))
            except BaseException:
                # `ip -batch` stops at the first line that fails: the namespaces of the lines before it
                # exist, and close() must delete them too (never one that was there before this batch)
                made = set(_netns_list()) - before
                self._made_netns.extend(name for name in names if name in made)
                raise
            self._made_netns.extend(names)
        else:
            for ns in nss:
                ns.holder = subprocess.Popen(["unshare", "--net", "sleep", "infinity"], start_new_session=True,
                                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
            self._wait_holders(nss)
        script = []
        for ns in nss:
            script.append(f"link add {ns.host_if} type veth peer name eth0 netns {ns.ref}\n")
        self._made_links.extend(ns.host_if for ns in nss)
        _run(["ip", "-batch", "-"], input="".join(script))
        for ns in nss:
            _write_sysctl(f"/proc/sys/net/ipv6/conf/{ns.host_if}/disable_ipv6", "1")
        _run(["ip", "-batch", "-"], input="".join(f"link set {ns.host_if} arp off up\n" for ns in nss))
        procs = []
        for ns in nss:
            lines = [
                "set -e",
                "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null || true",
                "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null || true",
                "ip link set lo up",
                *([f"ip link set eth0 address {ns.mac}"] if ns.mac else []),
            ]   # offloads stay as veth has them: the switch completes partial checksums, cuts TSO packets
            lines += [f"ip addr add {a} dev eth0" for a in ns.addrs]
            lines.append("ip link set eth0 up")
            if ns.gateway is not None:
                lines.append(f"ip route add default via {ns.gateway} dev eth0")
            else:   # an outside host: an address and a default route; the switch answers its ARP
                lines.append("ip route add default dev eth0")
                lines.append("cat /sys/class/net/eth0/address")
            procs.append((ns, subprocess.Popen(ns.argv(["sh", "-c", "\n".join(lines)]), stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE, text=True)))
        errors = []
        for ns, p in procs:
            out, err = p.communicate(timeout=60)
            if p.returncode != 0:
                errors.append(f"{ns.name}: exit {p.returncode}: {err.strip() or out.strip()}")
            elif not ns.mac:
                ns.mac = out.strip().splitlines()[-1] if out.strip() else ""
        if errors:
            raise LabUnavailable("configuring the lab namespaces failed: " + "; ".join(errors))

    @staticmethod
    def _wait_holders(nss: list[VmNamespace]) -> None:
        """Wait until each holder has entered its own network namespace."""
        mine = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        for ns in nss:
            assert ns.holder is not None
            while True:
                if ns.holder.poll() is not None:
                    raise LabUnavailable(f"`unshare --net sleep infinity` for {ns.name} exited "
                                         f"with {ns.holder.returncode}")
                try:
                    if os.readlink(f"/proc/{ns.holder.pid}/ns/net") != mine:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise LabUnavailable(f"the namespace holder for {ns.name} did not start")
                time.sleep(0.005)

    def close(self) -> None:
        """Kill the processes started in the lab, delete its links and namespaces (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for proc in self._procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    proc.kill()
            try:
                proc.communicate(timeout=5)
            except (subprocess.TimeoutExpired, ValueError, OSError):
                pass
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass
        self._procs.clear()
        # the host end first: `ip netns del` is asynchronous and would leave the pair behind a while
        if self._made_links:
            subprocess.run(["ip", "-force", "-batch", "-"], capture_output=True, text=True, check=False,
                           input="".join(f"link del {name}\n" for name in self._made_links))
            self._made_links.clear()
        for ns in self.namespaces:
            if ns.holder is not None:
                ns.holder.kill()
                ns.holder.wait()
                ns.holder = None
        if self._made_netns:
            subprocess.run(["ip", "-force", "-batch", "-"], capture_output=True, text=True, check=False,
                           input="".join(f"netns del {name}\n" for name in self._made_netns))
            self._made_netns.clear()
        _LABS.discard(self)

    def __enter__(self) -> Lab:
        return self.build()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Lab {self.tag} ({self.mode}) {len(self.vms)} VMs, {len(self.gateways)} gateways>"


def leftovers() -> tuple[list[str], list[str]]:
    """(namespaces, host links) named by a lab whose process no longer runs."""
    def dead(name: str) -> bool:
        m = _TAG_RE.match(name)
        return m is not None and not _pid_alive(int(m.group(1), 16))

    nss: list[str] = []
    links: list[str] = []
    if shutil.which("ip") is None:
        return nss, links
    nss.extend(name for name in _netns_list() if dead(name))
    res = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=False)
    for line in res.stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            name = parts[1].strip().split("@")[0]
            if dead(name):
                links.append(name)
    return nss, links


def cleanup_leftovers() -> tuple[list[str], list[str]]:
    """Delete the namespaces and links of labs whose process is gone; returns what was removed."""
    nss, links = leftovers()
    if links:
        subprocess.run(["ip", "-force", "-batch", "-"], capture_output=True, text=True, check=False,
                       input="".join(f"link del {name}\n" for name in links))
    if nss:
        subprocess.run(["ip", "-force", "-batch", "-"], capture_output=True, text=True, check=False,
                       input="".join(f"netns del {name}\n" for name in nss))
    return nss, links


if __name__ == "__main__":  # python -m fastvpc.live.netns: remove leftovers of dead runs
    removed_ns, removed_links = cleanup_leftovers()
    print(f"removed {len(removed_ns)} namespaces, {len(removed_links)} links")
