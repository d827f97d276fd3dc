"""Real packet drops between loopback addresses, in one nftables table per test.

A node's outgoing connections leave from 127.0.0.1 whatever address it listens on (the
kernel picks the source by the route), so an address alone does not say which node sent
a packet. Each node process therefore runs under a group id of its own, and the table
gives that group's packets the node's address (source NAT). Connections to 127.0.0.1 on
a node's ports (URLs written before the node moved, such as the peer URLs in a node
registry's cards) go to the node's address (destination NAT). Cutting two sides then puts
their address pairs, both ways, in one set that two chains drop:

- `sent`, after source NAT: a request leaving a node, with its node's address;
- `replies`, before the NAT turns a reply's destination back into 127.0.0.1: the answer
  a node gives on a connection another node opened.

Healing empties the set; leaving deletes the whole table.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address, IPv4Network

import pytest

TABLE_PREFIX = "danangchain_test_"
LOOPBACK = IPv4Network("127.0.0.0/8")
# Node processes run under group GROUP_BASE + (their address's offset in 127.0.0.0/8).
GROUP_BASE = 40_000
NFT_TIMEOUT_S = 10.0
_serial = itertools.count(1)


def run_nft(script: str) -> subprocess.CompletedProcess[str]:
    """Run an nft script (one command a line) as one atomic transaction."""
    return subprocess.run(
        ["nft", "-f", "-"], input=script, capture_output=True, text=True, timeout=NFT_TIMEOUT_S
    )


def nft_unusable_reason() -> str | None:
    """Return why nftables cannot be used here, or None when it can."""
    if shutil.which("nft") is None:
        return "nft is not installed (apt-get install nftables)"
    if os.geteuid() != 0:
        return "nft needs root to add tables"
    probe = f"{TABLE_PREFIX}{os.getpid()}_probe"
    result = run_nft(
        f"add table inet {probe}\n"
        f"add chain inet {probe} source {{ type nat hook postrouting priority srcnat; }}\n"
        f"delete table inet {probe}\n"
    )
    if result.returncode != 0:
        return f"nft fails: {result.stderr.strip()}"
    return None


def require_nft() -> None:
    """Skip the calling test, with the reason, when nftables cannot be used."""
    reason = nft_unusable_reason()
    if reason is not None:
        pytest.skip(reason)


def loopback_address(text: str) -> IPv4Address:
    """Return an address of 127.0.0.0/8; raise ValueError for any other."""
    address = IPv4Address(text)
    if address not in LOOPBACK:
        raise ValueError(f"{text} is not a loopback address (127.0.0.0/8): refusing to cut it")
    return address


def node_group(address: str) -> int:
    """Return the group id a node process on a loopback address runs under."""
    return GROUP_BASE + int(loopback_address(address)) - int(LOOPBACK.network_address)


class Netfault:
    """One nftables table of a test's own: node addresses, and cuts between them."""

    def __init__(self, name: str) -> None:
        if not name.startswith(TABLE_PREFIX):
            raise ValueError(f"table {name!r} must start with {TABLE_PREFIX!r}")
        self.name = name
        self.table = f"inet {name}"

    def _apply(self, script: str) -> None:
        result = run_nft(script)
        if result.returncode != 0:
            raise RuntimeError(f"nft refused:\n{script}{result.stderr.strip()}")

    def create(self) -> None:
        """Create the table: the source NAT chain, the set of cut pairs and its two chains."""
        t = self.table
        # `sent` runs after srcnat (100), `replies` before the output hook's dstnat (-100).
        self._apply(
            f"add table {t}\n"
            f"add chain {t} source {{ type nat hook postrouting priority srcnat; }}\n"
            f"add chain {t} destination {{ type nat hook output priority -100; }}\n"
            f"add set {t} cut {{ type ipv4_addr . ipv4_addr; }}\n"
            f"add chain {t} sent {{ type filter hook postrouting priority 110; }}\n"
            f"add chain {t} replies {{ type filter hook output priority -110; }}\n"
            f"add rule {t} sent ip saddr . ip daddr @cut counter drop\n"
            f"add rule {t} replies ip saddr . ip daddr @cut counter drop\n"
        )

    def add_node(self, address: str, ports: Iterable[int] = ()) -> int:
        """Give the packets a node's process sends to loopback its address, and send what
        is sent to 127.0.0.1 on its ports to its address; return the node's group."""
        group = node_group(address)
        node = loopback_address(address)
        script = f"add rule {self.table} source meta skgid {group} ip daddr {LOOPBACK} "
        script += f"snat ip to {node}\n"
        listed = ", ".join(str(int(port)) for port in ports)
        if listed:
            script += f"add rule {self.table} destination ip daddr 127.0.0.1 "
            script += f"tcp dport {{ {listed} }} dnat ip to {node}\n"
        self._apply(script)
        return group

    def cut(self, side_a: Iterable[str], side_b: Iterable[str]) -> None:
        """Drop every packet between an address of one side and one of the other, both ways."""
        a = [loopback_address(x) for x in side_a]
        b = [loopback_address(x) for x in side_b]
        if set(a) & set(b):
            raise ValueError(f"the sides share addresses: {sorted(set(a) & set(b))}")
        pairs = [f"{x} . {y}" for x, y in itertools.product(a, b)]
        pairs += [f"{y} . {x}" for x, y in itertools.product(a, b)]
        if pairs:
            self._apply(f"add element {self.table} cut {{ {', '.join(pairs)} }}\n")

    def heal(self) -> None:
        """Stop dropping: empty the set of cut pairs."""
        self._apply(f"flush set {self.table} cut\n")

    def dropped_packets(self) -> int:
        """Return how many packets the cuts dropped so far (healing keeps the count)."""
        result = subprocess.run(
            ["nft", "-j", "list", "table", *self.table.split()],
            capture_output=True,
            text=True,
            timeout=NFT_TIMEOUT_S,
            check=True,
        )
        rules = [item["rule"] for item in json.loads(result.stdout)["nftables"] if "rule" in item]
        counters = [e["counter"] for r in rules for e in r["expr"] if "counter" in e]
        return sum(int(c["packets"]) for c in counters)

    def delete(self) -> None:
        """Delete the table, with its rules, if it still exists."""
        run_nft(f"delete table {self.table}\n")


@contextlib.contextmanager
def netfault_table() -> Iterator[Netfault]:
    """Create a table of this process's own, named uniquely; always delete it on leaving."""
    require_nft()
    fault = Netfault(f"{TABLE_PREFIX}{os.getpid()}_{next(_serial)}")
    try:
        fault.create()
        yield fault
    finally:
        fault.delete()


def leftover_tables() -> list[str]:
    """Return the test tables of this process, or of processes that no longer exist."""
    result = subprocess.run(
        ["nft", "list", "tables", "inet"], capture_output=True, text=True, timeout=NFT_TIMEOUT_S
    )
    names = [line.split()[-1] for line in result.stdout.splitlines() if line.startswith("table")]
    return [name for name in names if _is_leftover(name)]


def _is_leftover(name: str) -> bool:
    owner = name.removeprefix(TABLE_PREFIX).split("_")[0]
    if not name.startswith(TABLE_PREFIX) or not owner.isdigit():
        return False
    return int(owner) == os.getpid() or not os.path.exists(f"/proc/{owner}")


def delete_leftover_tables() -> list[str]:
    """Delete what leftover_tables lists (nothing when nft is unusable); return their names."""
    if shutil.which("nft") is None or os.geteuid() != 0:
        return []
    names = leftover_tables()
    for name in names:
        run_nft(f"delete table inet {name}\n")
    return names
