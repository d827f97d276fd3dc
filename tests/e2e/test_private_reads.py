"""End to end: a household's record is private on a real node process. Unsigned reads
are refused, the household reads its memo through the CLI, a third member is refused, an
auditor reads it and the household's access log says so, and the explorer's pages show
neither the memo nor the amount."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import LocalNode, fetch

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

MEMO = "tiền điện tháng 11, nhà số 7"
AMOUNT = "734500"


def test_a_households_record_is_read_only_by_it_its_counterparty_and_auditors(
    local_node: LocalNode,
) -> None:
    node = local_node
    household = node.admit("household", "household")
    utility = node.admit("utility", "business")
    node.admit("neighbour", "household")
    auditor = node.admit("auditor", "auditor")
    recorded = node.cli(
        "tx", "record", "--from", "household", "--category", "payment",
        "--doc-hash", "5a" * 32, "--amount", AMOUNT, "--counterparty", utility,
        "--memo", MEMO, "--public", "--wait", "--json",
    )  # fmt: skip
    # A plain record (--public): its memo is on every node, so access control is all that
    # keeps it from other readers (sealed records: tests/e2e/test_sealed_records.py).
    assert recorded.returncode == 0, recorded.stderr
    made = json.loads(recorded.stdout)
    record_id, height = made["tx_id"], made["height"]

    # Without credentials: 401, and nothing private in the open routes.
    status, body = fetch(f"{node.url}/records/{record_id}")
    assert status == 401 and json.loads(body)["error"] == "auth_required"
    for path in (f"/accounts/{household}", "/chain/export"):
        assert fetch(node.url + path)[0] == 401, path
    for path in (f"/blocks/{height}", f"/txs/{record_id}"):
        status, body = fetch(node.url + path)
        shown = json.dumps(json.loads(body), ensure_ascii=False)  # JSON escapes the memo
        assert status == 200 and MEMO not in shown and AMOUNT not in shown, path

    # The household reads its own record through the CLI: the memo is there.
    own = node.cli("query", "record", record_id, "--from", "household")
    assert own.returncode == 0, own.stderr
    assert MEMO in own.stdout
    # A third member is refused; so is an unsigned query, in one line each.
    third = node.cli("query", "record", record_id, "--from", "neighbour")
    assert third.returncode == 1 and "not allowed" in third.stderr
    assert len(third.stderr.strip().splitlines()) == 1
    unsigned = node.cli("query", "record", record_id)
    assert unsigned.returncode == 2 and "--from" in unsigned.stderr

    # An auditor reads it; the household's access log lists that read (and not its own).
    audited = node.cli("query", "record", record_id, "--from", "auditor", "--json")
    assert audited.returncode == 0, audited.stderr
    assert json.loads(audited.stdout)["memo"] == MEMO
    log = node.cli("query", "access-log", "--from", "household", "--json")
    assert log.returncode == 0, log.stderr
    entries = json.loads(log.stdout)["entries"]
    assert [(e["reader"], e["reader_role"], e["route"], e["target"]) for e in entries] == [
        (auditor, "auditor", "record", record_id)
    ]
    text = node.cli("query", "access-log", "--from", "household")
    assert f"{auditor} (auditor) read record {record_id}" in text.stdout

    # The explorer's front, block and record pages show neither the memo nor the amount.
    for path in ("/", f"/explorer/blocks/{height}", f"/explorer/txs/{record_id}"):
        status, html = fetch(node.url + path)
        assert status == 200, path
        for private in (MEMO, AMOUNT, "734,500"):
            assert private not in html, (path, private)
    assert "payment" in fetch(f"{node.url}/explorer/txs/{record_id}")[1]
