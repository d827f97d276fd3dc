"""The auditor's witness options: pinned witness keys, where their checkpoints come from
(a witness's API or a saved file), and how many must agree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from cli.client import NodeClient, NotFound
from cli.common import EXIT_REFUSED, CliError, F, is_node_url
from cli.i18n import _
from danangchain import ed25519
from danangchain.block import Header
from danangchain.checkpoint import (
    Cosignature,
    InvalidCosignature,
    decode_checkpoints_file,
    decode_cosignature_json,
    is_valid_cosignature,
)
from danangchain.errors import DecodeError
from danangchain.proof import decode_header_json
from danangchain.witness_check import (
    MAX_LINK_HEADERS,
    ProofWitnesses,
    WitnessAgreement,
    WitnessCheckFailed,
    WitnessRequirement,
    check_witnessed_block,
    decode_proof_witnesses,
)

PAGE = 1000


@dataclass(frozen=True, slots=True)
class PinnedWitness:
    """A witness the auditor trusts: its public key and, if given, where it serves."""

    public_key: bytes
    url: str | None


@dataclass(frozen=True, slots=True)
class WitnessOptions:
    """The parsed witness options of one audit command."""

    pins: tuple[PinnedWitness, ...]
    requirement: WitnessRequirement
    saved: tuple[Cosignature, ...]

    def fetch(self, from_height: int = 1, limit: int | None = None) -> list[Cosignature]:
        """Return the saved cosignatures and those each witness with a URL serves from a
        height (all of them, or up to `limit` per witness)."""
        found = list(self.saved)
        for pin in self.pins:
            if pin.url is not None:
                found += fetch_checkpoints(pin, from_height, limit)
        return found


def witness_options(command: F) -> F:
    """Add --witness PUBKEY[@URL] (repeatable), --min-witnesses K and --checkpoints FILE."""
    for option in (
        click.option(
            "--witness",
            "witness_pins",
            multiple=True,
            help="A witness you trust: its public key (64 hex), @ and its URL to fetch its "
            "checkpoints (repeatable).",
        ),
        click.option(
            "--min-witnesses",
            type=click.IntRange(1),
            default=None,
            help="How many pinned witnesses must agree (default: all of them).",
        ),
        click.option(
            "--checkpoints",
            "checkpoints_file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="A saved set of cosigned checkpoints (JSON), used with the pinned keys.",
        ),
    ):
        command = option(command)
    return command


def parse_witness_options(
    witness_pins: tuple[str, ...],
    min_witnesses: int | None,
    checkpoints_file: Path | None,
    carried: bool = False,
) -> WitnessOptions | None:
    """Return the witness options, or None when no witness is pinned; `carried`: the
    checkpoints may come with the input (a proof file), so a pin needs no URL."""
    if not witness_pins:
        if min_witnesses is not None or checkpoints_file is not None:
            raise CliError(_("--min-witnesses and --checkpoints need --witness PUBKEY[@URL]"))
        return None
    pins = tuple(parse_pin(text) for text in witness_pins)
    keys = frozenset(pin.public_key for pin in pins)
    if len(keys) != len(pins):
        raise CliError(_("a witness is pinned twice"))
    minimum = len(keys) if min_witnesses is None else min_witnesses
    try:
        requirement = WitnessRequirement(keys, minimum)
    except DecodeError as exc:
        raise CliError(str(exc)) from None
    saved = tuple(read_checkpoints_file(checkpoints_file)) if checkpoints_file else ()
    if not (checkpoints_file or carried) and any(pin.url is None for pin in pins):
        raise CliError(_("a witness without @URL needs its checkpoints in --checkpoints FILE"))
    return WitnessOptions(pins, requirement, saved)


def parse_pin(text: str) -> PinnedWitness:
    """Parse PUBKEY or PUBKEY@URL."""
    key_text, _sep, url = text.partition("@")
    try:
        key = bytes.fromhex(key_text)
    except ValueError:
        key = b""
    if len(key) != ed25519.PUBLIC_KEY_SIZE or not ed25519.is_strict_public_key(key):
        raise CliError(
            _(
                "--witness {value}: the key must be 64 hex characters of an Ed25519 public key"
            ).format(value=repr(text))
        )
    if url and not is_node_url(url):
        raise CliError(
            _("--witness {value}: the URL must be scheme://host:port").format(value=repr(text))
        )
    return PinnedWitness(key, url.rstrip("/") or None)


def read_checkpoints_file(path: Path) -> list[Cosignature]:
    """Read a saved set of checkpoints; a missing or malformed file is a usage error."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(_("cannot read {path}: {reason}").format(path=path, reason=exc)) from None
    try:
        return decode_checkpoints_file(text)
    except DecodeError as exc:
        raise CliError(f"{path}: {exc}") from None


def fetch_checkpoints(pin: PinnedWitness, from_height: int, limit: int | None) -> list[Cosignature]:
    """Fetch a witness's checkpoints from a height, page by page; refuse another key's."""
    client = NodeClient(str(pin.url))
    found: list[Cosignature] = []
    height = from_height
    while limit is None or len(found) < limit:
        page = PAGE if limit is None else min(PAGE, limit - len(found))
        try:
            answer = client.get(f"/checkpoints?from={height}&limit={page}")
        except NotFound:
            raise CliError(
                _("{url} serves no checkpoints: is it a witness's URL?").format(url=pin.url)
            ) from None
        except CliError:
            raise CliError(
                _(
                    "cannot fetch the checkpoints of the witness at {url}: is it running? "
                    "check the URL given to --witness"
                ).format(url=pin.url)
            ) from None
        items = _decode_page(pin, answer)
        found += items
        if len(items) < page:
            break
        height = items[-1].height + 1
    return found


def _decode_page(pin: PinnedWitness, answer: dict[str, Any]) -> list[Cosignature]:
    """Decode one page of a witness's checkpoints and check they carry the pinned key."""
    try:
        items = [decode_cosignature_json(item) for item in answer["checkpoints"]]
    except (DecodeError, KeyError, TypeError) as exc:
        raise CliError(f"the witness at {pin.url} sent malformed checkpoints: {exc}") from None
    for item in items:
        if item.witness != pin.public_key:
            raise CliError(
                _("the witness at {url} signs with key {found}, not the pinned {pinned}").format(
                    url=pin.url, found=item.witness.hex(), pinned=pin.public_key.hex()
                )
            )
    return items


def fetch_first_checkpoint_from(pin: PinnedWitness, height: int) -> Cosignature:
    """Return a witness's lowest checkpoint at or above a height; exit 1 if it has none yet."""
    found = fetch_checkpoints(pin, height, 1)
    if not found:
        raise CliError(
            _(
                "the witness at {url} has cosigned no block at height {height} or above yet: "
                "try again after its next checkpoint"
            ).format(url=pin.url, height=height),
            EXIT_REFUSED,
        )
    return found[0]


# Witnesses of a proved block


def gather_witnesses(node_url: str, header: Header, witnesses: WitnessOptions) -> ProofWitnesses:
    """Return each pinned witness's first checkpoint at or above a proved block, and the
    node's headers that link the block to the highest of them; exit 1 if they disagree."""
    cosignatures = [c for c in witnesses.saved if c.height >= header.height]
    for pin in witnesses.pins:
        if pin.url is not None:
            cosignatures.append(fetch_first_checkpoint_from(pin, header.height))
    top = max((c.height for c in cosignatures), default=header.height)
    if top - header.height > MAX_LINK_HEADERS:
        raise CliError(
            f"the nearest checkpoints are {top - header.height} blocks above the proved one; "
            f"a proof links at most {MAX_LINK_HEADERS}: use witnesses that cosign more often"
        )
    client = NodeClient(node_url)
    try:
        headers = tuple(
            decode_header_json(client.get(f"/blocks/{height}")["header"])
            for height in range(header.height + 1, top + 1)
        )
    except (DecodeError, KeyError, TypeError) as exc:
        raise CliError(f"the node sent a malformed header: {exc}", EXIT_REFUSED) from None
    try:
        check_witnessed_block(header, headers, cosignatures, witnesses.requirement)
    except InvalidCosignature as exc:
        raise CliError(str(exc)) from None
    except WitnessCheckFailed as exc:
        raise CliError(f"the witnesses do not vouch for this block: {exc}", EXIT_REFUSED) from None
    return ProofWitnesses(headers, tuple(cosignatures))


def check_proof_witnesses(text: str, header: Header, witnesses: WitnessOptions) -> WitnessAgreement:
    """Check a proved block against K pinned witnesses: the proof's own cosignatures (of
    pinned keys), the saved ones and those the witnesses serve over the linked heights."""
    carried = decode_proof_witnesses(text)
    keys = witnesses.requirement.witnesses
    cosignatures = [c for c in carried.cosignatures if c.witness in keys]
    for cosignature in cosignatures:
        if not is_valid_cosignature(cosignature):
            raise WitnessCheckFailed(
                f"the proof's checkpoint at height {cosignature.height} by witness "
                f"{cosignature.witness.hex()[:16]} does not verify"
            )
    cosignatures += witnesses.fetch(header.height, len(carried.headers) + 1)
    try:
        return check_witnessed_block(header, carried.headers, cosignatures, witnesses.requirement)
    except InvalidCosignature as exc:
        raise CliError(str(exc)) from None


def describe_agreement(agreement: WitnessAgreement | None) -> list[str]:
    """Return the line that says which witnesses vouch for a proved block."""
    if agreement is None:
        return []
    heights = ", ".join(
        _("{witness} at height {height}").format(witness=key.hex()[:16], height=height)
        for key, height in sorted(agreement.agreeing.items())
    )
    return [_("cosigned by pinned witnesses: {witnesses}").format(witnesses=heights)]
