"""A node that cannot be used is reported in one line that says what to check, exit 2."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web
from click.testing import CliRunner

from cli.client import NodeClient
from cli.common import DEFAULT_NODE, CliError, is_node_url
from cli.main import cli
from node.chain.signatures import SignatureChecks
from node.p2p.transport import PeerServer


class Server:
    """An aiohttp application served on a free 127.0.0.1 port from a thread of its own."""

    def __init__(self, app: web.Application) -> None:
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()


def serve(app: web.Application) -> Iterator[str]:
    server = Server(app)
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def peer_port() -> Iterator[str]:
    """A node's real peer server, which refuses every request a node did not sign."""
    server = PeerServer(
        "danang",
        lambda key: True,
        SignatureChecks(),
        {},
        lambda batch: None,
        lambda batch: None,
        lambda: 0,
        lambda height: None,
    )
    yield from serve(server.create_app())


@pytest.fixture
def web_page() -> Iterator[str]:
    """Some other HTTP server, answering HTML."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    yield from serve(app)


@pytest.fixture
def slow_node() -> Iterator[str]:
    """A server that answers only after a second."""

    async def late(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.json_response({"height": 1})

    app = web.Application()
    app.router.add_get("/status", late)
    yield from serve(app)


@pytest.fixture
def closed_port() -> str:
    """A 127.0.0.1 URL where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def query_status(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, ["query", "status", *args], env=env)
    return result.exit_code, result.output.splitlines()


def test_a_node_that_is_not_running_is_reported_with_what_to_check(closed_port: str) -> None:
    code, lines = query_status("--node", closed_port)
    assert code == 2
    assert lines == [
        f"error: cannot reach the node at {closed_port}: is the node running? check --node"
    ]


def test_a_node_host_that_does_not_resolve_is_reported() -> None:
    code, lines = query_status("--node", "http://node0.invalid:26657")
    assert code == 2
    assert lines == [
        "error: cannot reach the node at http://node0.invalid:26657: "
        "its host name does not resolve; check --node"
    ]


def test_the_peer_port_is_told_apart_from_the_client_api(peer_port: str) -> None:
    code, lines = query_status("--node", peer_port)
    assert code == 2
    assert lines == [
        f"error: {peer_port} is a node's peer port, not its client API: "
        "use the API port (see config.toml [api] port)"
    ]


def test_a_server_answering_html_is_reported_as_answering_no_json(web_page: str) -> None:
    code, lines = query_status("--node", web_page)
    assert code == 2
    assert lines == [f"error: the node at {web_page} answered 200 with no JSON"]


def test_a_node_that_answers_too_late_is_reported_with_the_time_waited(slow_node: str) -> None:
    with pytest.raises(CliError) as caught:
        NodeClient(slow_node, timeout_s=0.1).get("/status")
    assert caught.value.exit_code == 2
    assert caught.value.message == f"the node at {slow_node} did not answer within 0.1s"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:26657/status",
        "http://127.0.0.1:26657/api/",
        "http://127.0.0.1:26657?x=1",
        "http://127.0.0.1:26657#status",
        "http://127.0.0.1:port",
        "http://127.0.0.1:99999",
        "http://:26657",
    ],
)
def test_a_node_url_that_is_not_scheme_host_port_is_refused(url: str) -> None:
    code, lines = query_status("--node", url)
    assert code == 2
    assert lines == [
        f"error: --node {url!r} must be scheme://host:port with no path, e.g. {DEFAULT_NODE}"
    ]


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:26657", "127.0.0.1:26657"])
def test_a_node_url_without_http_or_https_is_refused(url: str) -> None:
    code, lines = query_status("--node", url)
    assert code == 2
    assert lines == [f"error: node URL {url!r} must start with http:// or https://"]


def test_a_node_url_from_the_environment_names_the_variable() -> None:
    url = "http://127.0.0.1:26657/status"
    code, lines = query_status(env={"DANANGCHAIN_NODE": url})
    assert code == 2
    assert lines[0].startswith(f"error: DANANGCHAIN_NODE {url!r} must be scheme://host:port")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:26657",
        "http://127.0.0.1:26657/",
        "https://node.example.org",
        "http://[::1]:1",
    ],
)
def test_node_urls_of_scheme_host_and_port_are_accepted(url: str) -> None:
    assert is_node_url(url)


def test_the_node_option_drops_a_trailing_slash(closed_port: str) -> None:
    code, lines = query_status("--node", closed_port + "/")
    assert code == 2
    assert lines == [
        f"error: cannot reach the node at {closed_port}: is the node running? check --node"
    ]
