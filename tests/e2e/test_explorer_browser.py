"""End to end: Debian's headless Chromium drives the explorer of a real node process."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from danangchain.address import compute_address, encode_address
from node.keyfile import generate_signing_key, save_key
from tests.e2e.conftest import PASSWORD, LocalNode, keep_artifact

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOSTILE_MEMO = "<script>alert(1)</script> rice, 20 kg"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium (.ci/run installs it)",
    ),
]


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Launch Debian's Chromium headless (Playwright's own download does not work here)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def admit(node: LocalNode, name: str, role: str) -> str:
    """Create a key (cheap KDF for speed) and have the registrar admit it; return its address."""
    key = generate_signing_key()
    save_key(node.keystore / f"{name}.json", name, key, PASSWORD, kdf_n=2**10)
    address = encode_address(compute_address(key.public_key))
    result = node.cli("member", "admit", address, "--role", role, "--from", "registrar", "--wait")
    assert result.returncode == 0, result.stderr
    return address


def record(node: LocalNode, memo: str, counterparty: str) -> dict[str, object]:
    """Have the business record an invoice with a memo; return the committed outcome."""
    result = node.cli(
        "tx", "record", "--from", "business", "--category", "invoice",
        "--doc-hash", hashlib.sha256(memo.encode()).hexdigest(),
        "--amount", "1500000", "--counterparty", counterparty,
        "--memo", memo, "--public", "--wait", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outcome: dict[str, object] = json.loads(result.stdout)
    assert outcome["status"] == "committed"
    return outcome


def open_explorer(browser: Browser, url: str, dialogs: list[str]) -> Page:
    """Open the explorer's front page, noting any dialog a script might open."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url + "/")
    expect(page.locator("#live-state")).to_have_text("live", timeout=10_000)
    return page


def test_search_finds_a_record_whose_pages_show_neither_its_memo_nor_its_amount(
    local_node: LocalNode, browser: Browser, tmp_path: Path
) -> None:
    household = admit(local_node, "household", "household")
    admit(local_node, "business", "business")
    made = record(local_node, HOSTILE_MEMO, household)
    record_id, height = str(made["tx_id"]), int(str(made["height"]))
    dialogs: list[str] = []
    page = open_explorer(browser, local_node.url, dialogs)

    # A block committed while the page is open arrives through the websocket.
    later = record(local_node, "tea, 3 boxes", household)
    expect(page.locator("#stat-height")).to_have_text(str(later["height"]), timeout=10_000)
    expect(page.locator("#latest-blocks tbody tr").first).to_contain_text(str(later["height"]))
    front = keep_artifact("explorer-front.png")
    page.screenshot(path=str(front), full_page=True)

    page.fill("#search", record_id)
    page.press("#search", "Enter")
    page.wait_for_url(f"**/explorer/txs/{record_id}")
    expect(page.locator("p.ok")).to_contain_text("The proof checks")
    expect(page.locator("main")).to_contain_text("invoice")
    assert_no_private_data(page, household)
    shot = keep_artifact("explorer-record.png")
    page.screenshot(path=str(shot), full_page=True)

    page.click("#tx-block")
    page.wait_for_url(f"**/explorer/blocks/{height}")
    expect(page.locator("#block-txs")).to_contain_text("invoice")
    assert_no_private_data(page, household)
    assert page.locator("script", has_text="alert(1)").count() == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 1
    page.goto(local_node.url + "/")
    assert_no_private_data(page, household)
    assert dialogs == []


def assert_no_private_data(page: Page, counterparty: str) -> None:
    """Assert the page shows no memo, amount or counterparty of the records."""
    text = page.locator("body").inner_text()
    for private in (HOSTILE_MEMO, "tea, 3 boxes", "1500000", "1,500,000"):
        assert private not in text, (page.url, private)
    assert page.locator("dd.memo").count() == 0
    if "/explorer/txs/" in page.url:
        assert counterparty not in text


PHONE = {"width": 420, "height": 860}
FITS_THE_WIDTH = "document.documentElement.scrollWidth <= window.innerWidth"
COPIED_SELECTION = """(selector) => {
  const node = document.querySelector(selector);
  const range = document.createRange();
  range.selectNodeContents(node.closest("td"));
  const selection = document.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  let copied = null;
  const listen = (event) => { copied = event.clipboardData.getData("text/plain"); };
  window.addEventListener("copy", listen);
  document.execCommand("copy");
  window.removeEventListener("copy", listen);
  return copied;
}"""


def test_no_page_scrolls_sideways_at_a_phone_s_width(
    local_node: LocalNode, browser: Browser
) -> None:
    household = admit(local_node, "household", "household")
    business = admit(local_node, "business", "business")
    made = record(local_node, "tea, 3 boxes " + "x" * 120, household)
    record_id, height = str(made["tx_id"]), int(str(made["height"]))
    page = browser.new_page(viewport=PHONE)
    page.goto(local_node.url + "/")
    expect(page.locator("#live-state")).to_have_text("live", timeout=10_000)
    assert page.evaluate(FITS_THE_WIDTH), "/"
    front = keep_artifact("explorer-front-420.png")
    page.screenshot(path=str(front), full_page=True)
    for path in (
        f"/explorer/blocks/{height}",
        f"/explorer/txs/{record_id}",
        f"/explorer/accounts/{business}",
        "/explorer/validators",
    ):
        page.goto(local_node.url + path)
        expect(page.locator("main h1")).to_be_visible()
        assert page.evaluate(FITS_THE_WIDTH), path

    # The account's table shows the record shortened, and copying it copies the whole id.
    page.goto(local_node.url + f"/explorer/accounts/{business}")
    cell = page.locator(f'#account-records [data-full="{record_id}"]')
    expect(cell).to_have_text(f"{record_id[:10]}…{record_id[-6:]}")
    expect(cell).to_have_attribute("title", record_id)
    assert page.evaluate(COPIED_SELECTION, f'[data-full="{record_id}"]') == record_id

    # Ten hex digits of a recent id lead to it.
    page.fill("#search", record_id[:10])
    page.press("#search", "Enter")
    page.wait_for_url(f"**/explorer/txs/{record_id}")
