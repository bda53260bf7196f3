"""localbase's SQL stand-ins for ``uuid-ossp`` and ``pgcrypto`` (``localbase/contrib``) give what
the real extensions give: digests, HMACs and name-based UUIDs equal to Python's hashlib, hmac
and uuid (at the lengths around the hashes' padding boundaries too), time-based and random UUIDs
with the right version and variant, pgcrypto's errors, and crypt() hashes that match fixed
vectors from the real MD5-crypt and bcrypt and verify their own output."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from devstack.localbase import LocalbaseProcess
from tests.helpers import Sql, studio_sql

ALGORITHMS = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]
#: Byte lengths at the padding boundaries of 64-byte blocks (md5, sha1, sha224, sha256) and of
#: 128-byte blocks (sha384, sha512), and a few blocks long.
LENGTHS = [0, 1, 3, 55, 56, 57, 63, 64, 65, 111, 112, 119, 120, 127, 128, 129, 1000]
#: HMAC key lengths: empty, shorter than, equal to and longer than each block size.
KEY_LENGTHS = [0, 1, 20, 63, 64, 65, 127, 128, 129, 300]
#: Names for v3/v5; the hashed message is the namespace's 16 bytes then the name, so 39/40,
#: 47/48 and 103/104-byte names sit on SHA-1's padding boundaries.
NAMES = [
    "",
    "a",
    "python.org",
    "héllo wörld ✓ 日本語 🎉",
    "é" * 28,  # 56 bytes
    *("x" * n for n in (39, 40, 47, 48, 49, 55, 56, 63, 64, 65, 103, 104, 119, 120, 1000)),
]


def data(length: int, seed: int = 0) -> bytes:
    return bytes((i * 37 + seed * 101 + length) % 256 for i in range(length))


@pytest.fixture(scope="module")
def sql(localbase: LocalbaseProcess) -> Iterator[Sql]:
    """SQL as ``postgres``, with both extensions enabled as a Supabase migration enables them."""
    with studio_sql(localbase.db_dsn) as run:
        run('create extension if not exists "uuid-ossp" with schema extensions')
        run("create extension if not exists pgcrypto with schema extensions")
        yield run


def one(sql: Sql, statement: str, *params: object) -> Any:
    return sql(statement, *params)[0][0]


# uuid-ossp ------------------------------------------------------------------------------------


def test_the_constant_uuids(sql: Sql) -> None:
    row = sql(
        "select extensions.uuid_nil(), extensions.uuid_ns_dns(), extensions.uuid_ns_url(),"
        " extensions.uuid_ns_oid(), extensions.uuid_ns_x500()"
    )[0]
    assert row == (
        uuid.UUID(int=0),
        uuid.NAMESPACE_DNS,
        uuid.NAMESPACE_URL,
        uuid.NAMESPACE_OID,
        uuid.NAMESPACE_X500,
    )


@pytest.mark.parametrize("namespace", [uuid.NAMESPACE_DNS, uuid.NAMESPACE_URL, uuid.UUID(int=7)])
def test_name_based_uuids_match_python(sql: Sql, namespace: uuid.UUID) -> None:
    for name in NAMES:
        v3, v5 = sql(
            "select extensions.uuid_generate_v3(%s, %s), extensions.uuid_generate_v5(%s, %s)",
            namespace,
            name,
            namespace,
            name,
        )[0]
        assert (v3, v5) == (uuid.uuid3(namespace, name), uuid.uuid5(namespace, name)), name


@pytest.mark.parametrize("function", ["uuid_generate_v1", "uuid_generate_v1mc"])
def test_time_based_uuids(sql: Sql, function: str) -> None:
    before = datetime.datetime.now(datetime.UTC)
    uuids = [row[0] for row in sql(f"select extensions.{function}() from generate_series(1, 5000)")]
    after = datetime.datetime.now(datetime.UTC)
    assert len(set(uuids)) == len(uuids)
    for u in uuids:
        assert (u.version, u.variant) == (1, uuid.RFC_4122)
        assert u.node >> 40 & 0x03 == 0x03  # random node: multicast and local bits, no MAC
    gregorian = datetime.datetime(1582, 10, 15, tzinfo=datetime.UTC)
    first = gregorian + datetime.timedelta(microseconds=uuids[0].time // 10)
    last = gregorian + datetime.timedelta(microseconds=uuids[-1].time // 10)
    slack = datetime.timedelta(seconds=1)
    assert before - slack <= first <= last <= after + slack


def test_random_uuids(sql: Sql) -> None:
    uuids = [
        row[0] for row in sql("select extensions.uuid_generate_v4() from generate_series(1, 5000)")
    ]
    assert len(set(uuids)) == len(uuids)
    assert {(u.version, u.variant) for u in uuids} == {(4, uuid.RFC_4122)}


# pgcrypto: digest and hmac ----------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_digest_matches_hashlib(sql: Sql, algorithm: str) -> None:
    for length in LENGTHS:
        message = data(length)
        got = one(sql, "select extensions.digest(%s::bytea, %s)", message, algorithm)
        assert bytes(got) == hashlib.new(algorithm, message).digest(), length
    text = "héllo wörld ✓ " * 5
    got = one(sql, "select extensions.digest(%s::text, %s)", text, algorithm.upper())
    assert bytes(got) == hashlib.new(algorithm, text.encode()).digest()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_hmac_matches_python(sql: Sql, algorithm: str) -> None:
    for length in (0, 3, 55, 64, 112, 129, 1000):
        for key_length in KEY_LENGTHS:
            message, key = data(length), data(key_length, seed=1)
            got = one(
                sql, "select extensions.hmac(%s::bytea, %s::bytea, %s)", message, key, algorithm
            )
            assert bytes(got) == hmac.new(key, message, algorithm).digest(), (length, key_length)
    got = one(sql, "select extensions.hmac(%s::text, %s::text, %s)", "dätä", "kéy", algorithm)
    assert bytes(got) == hmac.new("kéy".encode(), "dätä".encode(), algorithm).digest()


@pytest.mark.parametrize("function", ["digest('x', %s)", "hmac('x', 'k', %s)"])
@pytest.mark.parametrize(
    ("name", "shown"), [("foo", "foo"), ("SHA3-256", "sha3-256"), ("x" * 70, "x" * 63)]
)
def test_an_unknown_algorithm_raises_pgcryptos_error(
    sql: Sql, function: str, name: str, shown: str
) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as raised:
        sql(f"select extensions.{function}", name)
    assert raised.value.diag.message_primary == f'Cannot use "{shown}": No such hash algorithm'


# pgcrypto: random -------------------------------------------------------------------------------


def test_gen_random_bytes(sql: Sql) -> None:
    for length in (1, 13, 14, 15, 16, 1024):
        assert len(one(sql, "select extensions.gen_random_bytes(%s)", length)) == length
    values = sql("select extensions.gen_random_bytes(16) from generate_series(1, 1000)")
    assert len({bytes(row[0]) for row in values}) == 1000
    uuid_value = one(sql, "select extensions.gen_random_uuid()")
    assert (uuid_value.version, uuid_value.variant) == (4, uuid.RFC_4122)


@pytest.mark.parametrize("length", [0, -1, 1025])
def test_gen_random_bytes_out_of_range(sql: Sql, length: int) -> None:
    with pytest.raises(psycopg.errors.ExternalRoutineInvocationException) as raised:
        sql("select extensions.gen_random_bytes(%s)", length)
    assert raised.value.diag.message_primary == "Length not in range"


# pgcrypto: crypt and gen_salt -----------------------------------------------------------------

#: Hashes computed by the real implementations: glibc's MD5-crypt, pgcrypto's regression tests
#: for bcrypt, and crypt_blowfish's own test vector.
KNOWN_HASHES = [
    ("password", "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/"),
    ("", "$1$ab$rn6aQS/o7141mj179E/zA."),
    ("héllo wörld", "$1$Zt6h.aE4$8zDpbUiW4ZgZUsQMeNoP.1"),
    ("x" * 100, "$1$abcdefgh$ax3Kvr/hbxTbyc0QiTLcg/"),
    ("", "$2a$06$RQiOJ.3ELirrXwxIZY8q0OlGbBEpDmx7IRZlNYvGJ1SHXwNi2cEKK"),
    ("foox", "$2a$06$RQiOJ.3ELirrXwxIZY8q0OR3CVJrAfda1z26CCHPnB6mmVZD8p0/C"),
    ("U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
]


@pytest.mark.parametrize(("password", "stored"), KNOWN_HASHES)
def test_crypt_reproduces_known_hashes(sql: Sql, password: str, stored: str) -> None:
    assert one(sql, "select extensions.crypt(%s, %s)", password, stored) == stored
    setting = stored[: stored.rindex("$")] if stored.startswith("$1$") else stored[:29]
    assert one(sql, "select extensions.crypt(%s, %s)", password, setting) == stored
    assert one(sql, "select extensions.crypt(%s, %s)", password + "!", stored) != stored


@pytest.mark.parametrize(
    ("salt_type", "pattern"),
    [
        ("'md5'", r"\$1\$[./0-9A-Za-z]{8}"),
        ("'MD5', 1000", r"\$1\$[./0-9A-Za-z]{8}"),
        ("'bf'", r"\$2a\$06\$[./0-9A-Za-z]{22}"),
        ("'bf', 4", r"\$2a\$04\$[./0-9A-Za-z]{22}"),
    ],
)
def test_crypt_round_trips_with_gen_salt(sql: Sql, salt_type: str, pattern: str) -> None:
    salt = one(sql, f"select extensions.gen_salt({salt_type})")
    assert re.fullmatch(pattern, str(salt))
    for password in ("", "correct horse", "pässwörd ✓"):
        stored = str(one(sql, "select extensions.crypt(%s, %s)", password, salt))
        assert stored.startswith(str(salt))
        assert one(sql, "select extensions.crypt(%s, %s)", password, stored) == stored
        assert one(sql, "select extensions.crypt(%s, %s)", password + "x", stored) != stored


@pytest.mark.parametrize(
    ("statement", "error", "message"),
    [
        ("gen_salt('nope')", psycopg.errors.InvalidParameterValue, "Unknown salt algorithm"),
        ("gen_salt('bf', 3)", psycopg.errors.InvalidParameterValue, "Incorrect number of rounds"),
        ("gen_salt('bf', 32)", psycopg.errors.InvalidParameterValue, "Incorrect number of rounds"),
        ("gen_salt('md5', 5)", psycopg.errors.InvalidParameterValue, "Incorrect number of rounds"),
        ("gen_salt('des')", psycopg.errors.FeatureNotSupported, "des is not available"),
        ("gen_salt('sha512crypt')", psycopg.errors.FeatureNotSupported, "sha512crypt is not"),
        ("crypt('x', 'ab')", psycopg.errors.FeatureNotSupported, "only md5"),
        (
            "crypt('x', '$2a$03$CCCCCCCCCCCCCCCCCCCCC.')",
            psycopg.errors.InvalidParameterValue,
            "salt",
        ),
        ("crypt('x', '$2a$05$CCCC')", psycopg.errors.InvalidParameterValue, "invalid salt"),
    ],
)
def test_unsupported_or_bad_salts(
    sql: Sql, statement: str, error: type[psycopg.Error], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        sql(f"select extensions.{statement}")


# What is defined ------------------------------------------------------------------------------

#: name(arguments): (volatility, strict, parallel safe) as the real extensions declare them.
EXPECTED = {
    "uuid-ossp": {
        "uuid_nil()": ("i", True),
        "uuid_ns_dns()": ("i", True),
        "uuid_ns_url()": ("i", True),
        "uuid_ns_oid()": ("i", True),
        "uuid_ns_x500()": ("i", True),
        "uuid_generate_v1()": ("v", True),
        "uuid_generate_v1mc()": ("v", True),
        "uuid_generate_v3(uuid,text)": ("i", True),
        "uuid_generate_v4()": ("v", True),
        "uuid_generate_v5(uuid,text)": ("i", True),
    },
    "pgcrypto": {
        "digest(text,text)": ("i", True),
        "digest(bytea,text)": ("i", True),
        "hmac(text,text,text)": ("i", True),
        "hmac(bytea,bytea,text)": ("i", True),
        "crypt(text,text)": ("i", True),
        "gen_salt(text)": ("v", True),
        "gen_salt(text,integer)": ("v", True),
        "gen_random_bytes(integer)": ("v", True),
        "gen_random_uuid()": ("v", False),
    },
}


@pytest.mark.parametrize("extension", sorted(EXPECTED))
def test_the_functions_and_their_attributes(sql: Sql, extension: str) -> None:
    rows = sql(
        """
        select p.oid::regprocedure::text, p.provolatile::text, p.proisstrict, p.proparallel::text
        from pg_depend d
        join pg_extension e on e.oid = d.refobjid and d.refclassid = 'pg_extension'::regclass
        join pg_proc p on p.oid = d.objid and d.classid = 'pg_proc'::regclass
        where e.extname = %s and p.proname not like '\\_%%'
        """,
        extension,
    )
    functions = {name.removeprefix("extensions."): (vol, strict) for name, vol, strict, _ in rows}
    assert functions == EXPECTED[extension]
    assert {parallel for *_, parallel in rows} == {"s"}
