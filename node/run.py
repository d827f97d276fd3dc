"""Start a node from its home folder: config, genesis, key, store, engine, API."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from danangchain import ed25519
from danangchain.address import compute_address, encode_address
from danangchain.errors import DecodeError
from danangchain.genesis import Genesis, decode_genesis_json
from node.api import create_app
from node.config import ConfigError, NodeConfig, load_config
from node.engine import SoloEngine
from node.keyfile import read_keystore, unlock_key
from node.ledger import Limits, NodeLedger
from node.store import Store

log = logging.getLogger("danangchain.node")


def load_genesis(config: NodeConfig) -> Genesis:
    """Read and parse the genesis file named by a node's config."""
    path = config.path(config.genesis_file)
    try:
        return decode_genesis_json(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read genesis file {path}: {exc.strerror}") from None
    except DecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def build_node(config: NodeConfig, key: ed25519.SigningKey) -> web.Application:
    """Wire store, ledger, engine and API for a node; the store opens when the app starts."""
    genesis = load_genesis(config)
    store = Store(str(config.path(config.data_dir)))
    try:
        limits = Limits(config.block_max_txs, config.mempool_max_txs, config.mempool_max_bytes)
        ledger = NodeLedger(genesis, store, limits)
        engine = SoloEngine(ledger, key, config.block_min_interval_ms / 1000)
    except BaseException:
        store.close()
        raise
    info = {
        "node_name": config.name,
        "node_address": encode_address(compute_address(key.public_key)),
        "node_public_key": key.public_key.hex(),
    }
    app = create_app(ledger, info)

    async def run_engine(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_guard(engine.run()))
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store.close()

    app.cleanup_ctx.append(run_engine)
    return app


async def _guard(coroutine: asyncio.Future[None] | object) -> None:
    """Run the engine; if it fails, log why and stop the whole node instead of limping on."""
    try:
        await coroutine  # type: ignore[misc]
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("block production failed; stopping the node")
        os.kill(os.getpid(), signal.SIGTERM)


def run_node(home: Path, password: str) -> None:
    """Run a node in the foreground until SIGINT or SIGTERM."""
    config = load_config(home)
    key = unlock_key(read_keystore(config.path(config.key_file)), password)
    app = build_node(config, key)
    announce = f"node {config.name} serving the API on {config.api_url}"
    web.run_app(
        app,
        host=config.api_host,
        port=config.api_port,
        print=lambda _: print(announce, flush=True),
        access_log=None,
        shutdown_timeout=5,
    )
