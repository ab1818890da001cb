"""optiinfra_store.crypto.legacy_pgp against real pgcrypto output (pgp_sym_encrypt[_bytea]).

Ciphertexts are made by pgcrypto in a throwaway database on $OPTIINFRA_TEST_DSN's server (else
postgresql://postgres@127.0.0.1:5432/postgres); the module is skipped when that server is
unreachable or has no pgcrypto. A few edge cases pgcrypto never emits (old-format headers, a
compressed packet with algorithm 0, SHA-224 S2K) use messages built here with hashlib and AES.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from psycopg import sql
from psycopg.conninfo import make_conninfo

from optiinfra_store.connection.dsn import redact
from optiinfra_store.crypto.legacy_pgp import LegacyDecryptError, decrypt, is_pgp_message

DSN = os.environ.get("OPTIINFRA_TEST_DSN") or "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "correct horse battery staple"
SAMPLE = b"a legacy secret value, " * 40 + bytes(range(256))


@pytest.fixture(scope="module")
def pg() -> Iterator[psycopg.Connection]:
    """Autocommit connection to a fresh database with pgcrypto, dropped afterwards."""
    try:
        admin = psycopg.connect(DSN, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL unreachable at {redact(DSN)}: {exc}")
    with admin:
        available = admin.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto'").fetchone()
        if available is None:
            pytest.skip(f"pgcrypto is not available on {redact(DSN)}")
        name = f"legacy_pgp_{uuid.uuid4().hex[:12]}"
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            conninfo = make_conninfo(DSN, dbname=name)
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
                yield conn
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def encrypt(pg: psycopg.Connection, data: bytes, password: str = PASSWORD, options: str = "") -> bytes:
    row = pg.execute("SELECT pgp_sym_encrypt_bytea(%s, %s, %s)", (data, password, options))
    return row.fetchone()[0]


def test_default_options_round_trip(pg: psycopg.Connection) -> None:
    message = encrypt(pg, SAMPLE)
    assert is_pgp_message(message)
    assert decrypt(message, PASSWORD) == SAMPLE


OPTION_MATRIX = [
    f"cipher-algo={cipher}, compress-algo={compress}, s2k-mode={mode}, "
    f"s2k-digest-algo={digest}, sess-key={sess_key}, disable-mdc={disable_mdc}"
    for cipher, compress, mode, digest, sess_key, disable_mdc in itertools.product(
        ["aes128", "aes192", "aes256"], [0, 1, 2], [0, 1, 3], ["md5", "sha1"], [0, 1], [0, 1]
    )
]


@pytest.mark.parametrize("options", OPTION_MATRIX)
def test_option_matrix_round_trip(pg: psycopg.Connection, options: str) -> None:
    assert decrypt(encrypt(pg, SAMPLE, options=options), PASSWORD) == SAMPLE


@pytest.mark.parametrize(
    "options",
    [
        f"cipher-algo={cipher}, s2k-mode={mode}, s2k-digest-algo={digest}, sess-key={sess_key}"
        for cipher, mode, digest, sess_key in itertools.product(
            ["aes128", "aes256"], [0, 1, 3], ["sha256", "sha384", "sha512"], [0, 1]
        )
    ],
)
def test_sha2_s2k_digests(pg: psycopg.Connection, options: str) -> None:
    """pgcrypto accepts SHA-2 S2K digests too, although its documentation lists md5 and sha1."""
    assert decrypt(encrypt(pg, SAMPLE, options=options), PASSWORD) == SAMPLE


@pytest.mark.parametrize(
    "options",
    [
        "s2k-count=1024",
        "s2k-count=65011712, cipher-algo=aes256",  # the largest count, two SHA-1 contexts
        "sess-key=1, cipher-algo=aes128, s2k-cipher-algo=aes256",
        "sess-key=1, cipher-algo=aes256, s2k-cipher-algo=aes192",
        "sess-key=0, cipher-algo=aes128, s2k-cipher-algo=aes256",
        "compress-algo=2, compress-level=9",
    ],
)
def test_other_options(pg: psycopg.Connection, options: str) -> None:
    assert decrypt(encrypt(pg, SAMPLE, options=options), PASSWORD) == SAMPLE


@pytest.mark.parametrize("options", ["", "disable-mdc=1", "compress-algo=1", "sess-key=1"])
@pytest.mark.parametrize("size", [0, 1, 16378, 16384, 100_000])
def test_sizes(pg: psycopg.Connection, size: int, options: str) -> None:
    data = os.urandom(size)
    assert decrypt(encrypt(pg, data, options=options), PASSWORD) == data


def test_large_values_are_streamed_with_partial_lengths(pg: psycopg.Connection) -> None:
    message = encrypt(pg, os.urandom(100_000))
    data_packet = 2 + message[1]  # after the SKESK packet: header byte, one length byte, body
    assert message[data_packet] == 0xC0 | 18  # new-format SEIPD header
    assert message[data_packet + 1] == 0xE0 | 14  # partial length: 2**14 bytes, more follow


def test_unicode_password(pg: psycopg.Connection) -> None:
    password = "pässwörd 🔑 пароль"
    message = encrypt(pg, SAMPLE, password)
    assert decrypt(message, password) == SAMPLE
    with pytest.raises(LegacyDecryptError):
        decrypt(message, "passwörd 🔑 пароль")


@pytest.mark.parametrize("options", ["", "sess-key=1", "disable-mdc=1", "sess-key=1, disable-mdc=1"])
def test_wrong_password(pg: psycopg.Connection, options: str) -> None:
    message = encrypt(pg, SAMPLE, options=options)
    with pytest.raises(LegacyDecryptError, match="wrong key") as raised:
        decrypt(message, "not the password")
    assert "not the password" not in str(raised.value)


@pytest.mark.parametrize("options", ["", "sess-key=1", "compress-algo=1"])
def test_every_flipped_byte_is_detected(pg: psycopg.Connection, options: str) -> None:
    message = encrypt(pg, b"0123456789", options=options)
    for position in range(len(message)):
        tampered = bytearray(message)
        tampered[position] ^= 0x01
        with pytest.raises(LegacyDecryptError) as raised:
            decrypt(bytes(tampered), PASSWORD)
        assert "0123456789" not in str(raised.value)


def test_flipped_byte_in_sed_goes_undetected(pg: psycopg.Connection) -> None:
    """disable-mdc=1 messages have no integrity check: a flipped bit flips the plaintext."""
    tampered = bytearray(encrypt(pg, b"0123456789", options="disable-mdc=1"))
    tampered[-1] ^= 0x01
    assert decrypt(bytes(tampered), PASSWORD) == b"0123456788"
    with pytest.raises(LegacyDecryptError, match="no integrity check"):  # so the store refuses them
        decrypt(bytes(tampered), PASSWORD, require_integrity=True)


def test_every_truncation_is_refused(pg: psycopg.Connection) -> None:
    message = encrypt(pg, SAMPLE)
    for length in range(len(message)):
        with pytest.raises(LegacyDecryptError):
            decrypt(message[:length], PASSWORD)


def test_text_variant(pg: psycopg.Connection) -> None:
    text = "naïve café ✓\nsecond line"
    for options, expected in [("", text), ("convert-crlf=1", text.replace("\n", "\r\n"))]:
        row = pg.execute("SELECT pgp_sym_encrypt(%s, %s, %s)", (text, PASSWORD, options))
        assert decrypt(row.fetchone()[0], PASSWORD) == expected.encode("utf-8")


@pytest.mark.parametrize("cipher", ["bf", "3des", "cast5"])
def test_other_ciphers_are_unsupported(pg: psycopg.Connection, cipher: str) -> None:
    try:
        message = encrypt(pg, SAMPLE, options=f"cipher-algo={cipher}")
    except psycopg.Error as exc:  # OpenSSL 3 without the legacy provider: bf and cast5
        pytest.skip(f"this server's pgcrypto cannot encrypt with {cipher}: {exc}")
    with pytest.raises(LegacyDecryptError, match="unsupported cipher"):
        decrypt(message, PASSWORD)


def test_is_pgp_message(pg: psycopg.Connection) -> None:
    assert is_pgp_message(encrypt(pg, b"", options="disable-mdc=1"))
    assert is_pgp_message(b"\x8c\x0d")  # old-format SKESK header
    # empty, plain text, a new-format literal packet, an old-format tag 1, no 0x80 bit
    for data in [b"", b"plain text", b"\xcb\x05", b"\x85\x0d", b"\x03"]:
        assert not is_pgp_message(data)


# Messages pgcrypto never produces, built with hashlib and AES directly.


def old_packet(tag: int, body: bytes, length_type: int) -> bytes:
    """Old-format packet; length_type 0/1/2 is a 1/2/4-byte length, 3 runs to the end."""
    header = bytes([0x80 | tag << 2 | length_type])
    if length_type == 3:
        return header + body
    return header + len(body).to_bytes(1 << length_type, "big") + body


def handmade_message(password: str, plaintext_packets: bytes) -> bytes:
    """Old-format SKESK (salted S2K, SHA-224, AES-128) and a SEIPD with a five-byte length."""
    salt = os.urandom(8)
    key = hashlib.sha224(salt + password.encode()).digest()[:16]
    prefix = os.urandom(16)
    hashed = prefix + prefix[-2:] + plaintext_packets + b"\xd3\x14"
    encryptor = Cipher(algorithms.AES(key), CFB(bytes(16))).encryptor()
    encrypted = encryptor.update(hashed + hashlib.sha1(hashed).digest()) + encryptor.finalize()
    seipd = b"\x01" + encrypted
    return (
        old_packet(3, bytes([4, 7, 1, 11]) + salt, 0) + bytes([0xC0 | 18, 255]) + len(seipd).to_bytes(4, "big") + seipd
    )


LITERAL = old_packet(11, b"b\x04name\x00\x00\x00\x00" + SAMPLE, 1)


@pytest.mark.parametrize(
    "inner",
    [LITERAL, old_packet(8, b"\x00" + LITERAL, 3), old_packet(8, b"\x00" + LITERAL, 2)],
    ids=["literal", "stored-to-the-end", "stored-4-byte-length"],
)
def test_handmade_old_format_and_stored_compressed_packet(inner: bytes) -> None:
    assert decrypt(handmade_message(PASSWORD, inner), PASSWORD) == SAMPLE


@pytest.mark.parametrize(
    "inner, error",
    [
        (old_packet(8, b"\x03BZh9", 3), "unsupported compression algorithm 3"),
        (old_packet(8, b"\x01not deflate", 3), "corrupt compressed data"),
        (LITERAL + LITERAL, "expected one packet"),
        (old_packet(10, b"PGP", 0), "unexpected packet tag 10"),
    ],
)
def test_handmade_malformed_contents(inner: bytes, error: str) -> None:
    with pytest.raises(LegacyDecryptError, match=error):
        decrypt(handmade_message(PASSWORD, inner), PASSWORD)
