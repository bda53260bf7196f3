"""Whether a snapshot includes a streamed transaction, and the xid the decoder reads for it."""

from __future__ import annotations

import struct

import pytest

from localbase.realtime.visibility import includes
from localbase.replication import PgOutputDecoder

EPOCH = 1 << 32


@pytest.mark.parametrize(
    ("snapshot", "xid", "expected"),
    [
        ("758:758:", 758, False),  # the newest transaction, still running
        ("759:759:", 758, True),  # ... finished
        ("750:760:752,758", 758, False),  # listed as running
        ("750:760:752", 758, True),  # between xmin and xmax, not running
        ("760:770:", 758, True),  # below xmin
        ("760:770:", 771, False),  # not even started when the snapshot was taken
        (f"{EPOCH + 5}:{EPOCH + 9}:", EPOCH - 3, True),  # across a wraparound: the last epoch
        (f"{EPOCH - 3}:{EPOCH - 2}:{EPOCH - 3}", EPOCH - 3, False),
        (f"{EPOCH - 9}:{EPOCH - 8}:", 2, False),  # just past the wraparound, not yet visible
        (f"{EPOCH + 9}:{EPOCH + 10}:", 3, True),
        (f"{2 * EPOCH}:{2 * EPOCH + 4}:{2 * EPOCH + 3}", 3, False),
    ],
)
def test_includes(snapshot: str, xid: int, expected: bool) -> None:
    assert includes(snapshot, xid) is expected


def test_decoder_reads_the_xid_of_begin() -> None:
    decoder = PgOutputDecoder()
    xid = 0xFFFF_FFF0  # above 2^31: unsigned on the wire
    assert decoder.feed(b"B" + struct.pack("!qqI", 0x1000, 0, xid)) is None
    transaction = decoder.feed(b"C" + struct.pack("!bqqq", 0, 0x1000, 0x1010, 0))
    assert transaction is not None
    assert (transaction.xid, transaction.commit_lsn, transaction.end_lsn) == (xid, 0x1000, 0x1010)
    assert transaction.changes == ()
