"""The one module that joins the core, the store and the clock: start a node from its home
folder (config, genesis, key, store, ledger, consensus driver, API and peer server)."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from danangchain import ed25519
from danangchain.address import compute_address, encode_address
from node.chain.ledger import Limits, NodeLedger
from node.chain.verify_pool import SignaturePool, auto_workers
from node.config import (
    TRUST_REGISTRY,
    ConfigError,
    NodeConfig,
    check_hosts,
    load_config,
    load_genesis,
    parse_allowed_peers,
)
from node.consensus.driver import ConsensusDriver
from node.http.api import create_app
from node.http.operator import PEERS
from node.keyfile import read_keystore, unlock_key
from node.p2p.service import registry_certificates
from node.storage.store import Store
from node.tls import RegistryTrust, client_context, server_context

log = logging.getLogger("danangchain.node")


def source_address(host: str) -> str | None:
    """Return the address a node's peer connections leave from: the one it listens on,
    when that is one address (not a wildcard nor a name)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return None if address.is_unspecified else str(address)


def registry_trust(config: NodeConfig, ledger: NodeLedger, password: str) -> RegistryTrust:
    """Return the TLS trust of a node whose peers are the registry's nodes."""
    try:
        return RegistryTrust(
            config.path(config.tls_cert_file),
            config.path(config.tls_key_file),
            password,
            registry_certificates(ledger.reads.nodes()),
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load this node's TLS identity: {exc}") from None


async def serve(
    config: NodeConfig, key: ed25519.SigningKey, stop: asyncio.Event, password: str = ""
) -> None:
    """Run a node until `stop` is set: API, block production and, in a network, its peers."""
    genesis = load_genesis(config)
    store = Store.open(str(config.path(config.data_dir)))
    runners: list[web.AppRunner] = []
    workers = auto_workers() if config.verify_workers is None else config.verify_workers
    pool = SignaturePool(workers) if workers > 0 else None
    try:
        limits = Limits(config.block_max_txs, config.mempool_max_txs, config.mempool_max_bytes)
        ledger = NodeLedger(genesis, store, limits, pool=pool)
        trust = None
        peer_ssl = client_ssl = None
        if config.p2p_tls and config.tls_trust == TRUST_REGISTRY:
            trust = registry_trust(config, ledger, password)
            peer_ssl, client_ssl = trust.server, trust.client
        elif config.p2p_tls:
            peer_ssl, client_ssl = server_context(config, True), client_context(config)
        driver = ConsensusDriver(
            ledger,
            key,
            list(config.peers),
            allowed_peers=parse_allowed_peers(config),
            client_ssl=client_ssl,
            min_block_interval_s=config.block_min_interval_ms / 1000,
            trust=trust,
            source_host=source_address(config.p2p_host),
        )
        api = create_app(ledger, node_info(config, key))
        api[PEERS] = driver  # metrics and readiness read its peers
        api_ssl = server_context(config, False) if config.api_tls else None
        apps = [
            (api, config.api_host, config.api_port, api_ssl),
            (driver.peer_server().create_app(), config.p2p_host, config.p2p_port, peer_ssl),
        ]
        for app, host, port, context in apps:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, port, ssl_context=context).start()
        print(f"node {config.name} serving the API on {config.api_url}", flush=True)
        task = asyncio.create_task(_guard(driver.run(), stop))
        await stop.wait()
        task.cancel()
        (failure,) = await asyncio.gather(task, return_exceptions=True)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        if pool is not None:
            pool.close()
        store.close()
    log.info("node %s stopped", config.name)
    if isinstance(failure, NodeStopped):
        raise failure


def node_info(config: NodeConfig, key: ed25519.SigningKey) -> dict[str, str]:
    """Return what /status says about this node itself."""
    return {
        "node_name": config.name,
        "node_address": encode_address(compute_address(key.public_key)),
        "node_public_key": key.public_key.hex(),
    }


class NodeStopped(Exception):
    """Consensus failed: the node stopped instead of limping on (its log says why)."""


async def _guard(coroutine: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run consensus; if it fails, log why and stop the whole node instead of limping on."""
    try:
        await coroutine
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("consensus failed; stopping the node")
        stop.set()
        raise NodeStopped(f"consensus failed and the node stopped: {exc}") from exc


async def _serve_until_signalled(
    config: NodeConfig, key: ed25519.SigningKey, password: str
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await serve(config, key, stop, password)


# The collector's thresholds in a running node (CPython's default is 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_garbage_collector() -> None:
    """Collect cycles less often: a node allocates a few objects per transaction and
    frees nearly all by reference counting, but with the default thresholds a full
    collection walks the whole heap (every pending transaction) many times per block,
    about 30 ms each with 20,000 pending. What start-up loaded is frozen, so no
    collection walks it again."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_node(home: Path, password: str) -> None:
    """Run a node in the foreground until SIGINT or SIGTERM."""
    config = load_config(home)
    check_hosts(config)
    key = unlock_key(read_keystore(config.path(config.key_file)), password)
    tune_garbage_collector()
    asyncio.run(_serve_until_signalled(config, key, password))
