"""Decrypt pgcrypto's ``pgp_sym_encrypt[_bytea]`` output client-side, for a one-off migration.

Values that the server encrypted with pgcrypto are decrypted here, in Python, so the password
never travels to a server. Only what pgcrypto's symmetric encryption produces is supported
(RFC 4880 section numbers in brackets):

* packet headers in old and new format, including new-format partial body lengths [4.2];
* one Symmetric-Key Encrypted Session Key packet, version 4 [5.3], with S2K simple, salted or
  iterated+salted [3.7] over MD5, SHA-1 or SHA-2, with or without an encrypted session key
  (pgcrypto option ``sess-key=1``);
* AES-128/192/256 only; Blowfish, 3DES and CAST5 raise LegacyDecryptError("unsupported cipher");
* Symmetrically Encrypted Integrity Protected Data version 1, whose MDC is verified [5.13, 5.14],
  and legacy Symmetrically Encrypted Data, CFB with resync (``disable-mdc=1``) [5.7, 13.9];
* inside: one literal data packet [5.9], optionally in a compressed data packet
  (uncompressed, ZIP or ZLIB) [5.6].

The password is encoded as UTF-8, which matches what pgcrypto hashed on a UTF8 database.
Literal data is returned verbatim: the ``convert-crlf=1`` line-ending conversion that
``pgp_sym_decrypt`` would undo is not undone. Error messages never contain the password or
any plaintext.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["LegacyDecryptError", "decrypt", "is_pgp_message"]

# Packet tags [4.3].
_TAG_SKESK = 3
_TAG_COMPRESSED = 8
_TAG_SED = 9
_TAG_LITERAL = 11
_TAG_SEIPD = 18

_AES_KEY_SIZES = {7: 16, 8: 24, 9: 32}  # symmetric algorithm id [9.2] -> key length
_AES_BLOCK = 16
_PREFIX_LEN = _AES_BLOCK + 2  # random block, then its last two bytes repeated as a quick check
_S2K_DIGESTS = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}
_S2K_SALT_LEN = 8
_S2K_CHUNK = 64 * 1024  # iterated S2K input is hashed in chunks of about this size
_SHA1_LEN = 20
_MDC_HEADER = b"\xd3\x14"  # new-format header of the MDC packet: tag 19, 20-byte body
_MDC_LEN = len(_MDC_HEADER) + _SHA1_LEN
_ZLIB_WBITS = {1: -15, 2: 15}  # compression algorithm id [9.3] -> raw deflate (ZIP) or ZLIB


class LegacyDecryptError(ValueError):
    """Wrong password, or a tampered, truncated or unsupported message."""


class _Reader:
    """Sequential, bounds-checked reads from a byte string."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def at_end(self) -> bool:
        return self._pos >= len(self._data)

    def take(self, size: int) -> bytes:
        if self._pos + size > len(self._data):
            raise LegacyDecryptError("truncated message")
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def rest(self) -> bytes:
        return self.take(len(self._data) - self._pos)


def is_pgp_message(data: bytes) -> bool:
    """True when ``data`` starts with a SKESK packet header, as pgcrypto's output does."""
    if not data or not data[0] & 0x80:
        return False
    tag = data[0] & 0x3F if data[0] & 0x40 else (data[0] >> 2) & 0x0F
    return tag == _TAG_SKESK


def decrypt(message: bytes, password: str, *, require_integrity: bool = False) -> bytes:
    """Return the data that ``pgp_sym_encrypt_bytea(data, password, ...)`` encrypted. With
    `require_integrity`, a message without an integrity check (``disable-mdc=1``, whose plaintext
    an attacker can change bit by bit) is refused."""
    packets = _packets(message)
    tags = [tag for tag, _ in packets]
    if tags not in ([_TAG_SKESK, _TAG_SEIPD], [_TAG_SKESK, _TAG_SED]):
        raise LegacyDecryptError(f"not a symmetrically encrypted message: packet tags {tags}")
    if require_integrity and tags[1] == _TAG_SED:
        raise LegacyDecryptError("the message has no integrity check (disable-mdc)")
    (_, skesk), (data_tag, encrypted) = packets
    key = _session_key(skesk, password.encode("utf-8"))
    if data_tag == _TAG_SEIPD:
        plaintext = _decrypt_seipd(key, encrypted)
    else:
        plaintext = _decrypt_sed(key, encrypted)
    return _literal_data(plaintext)


def _packets(data: bytes) -> list[tuple[int, bytes]]:
    """Split ``data`` into (tag, body) pairs, joining the parts of partial-length bodies [4.2]."""
    reader = _Reader(data)
    packets = []
    while not reader.at_end():
        header = reader.byte()
        if not header & 0x80:
            raise LegacyDecryptError("not an OpenPGP packet header")
        if header & 0x40:  # new format: tag in bits 0-5, then one or more length headers
            tag, parts, partial = header & 0x3F, [], True
            while partial:
                length, partial = _new_format_length(reader)
                parts.append(reader.take(length))
            body = b"".join(parts)
        else:  # old format: tag in bits 2-5, length size in bits 0-1 (3 = up to the end)
            tag, length_type = (header >> 2) & 0x0F, header & 0x03
            if length_type == 3:
                body = reader.rest()
            else:
                body = reader.take(int.from_bytes(reader.take(1 << length_type), "big"))
        packets.append((tag, body))
    return packets


def _new_format_length(reader: _Reader) -> tuple[int, bool]:
    """Read one new-format body length; the flag says it is a partial length, more follow."""
    first = reader.byte()
    if first < 192:
        return first, False
    if first < 224:
        return ((first - 192) << 8) + reader.byte() + 192, False
    if first == 255:
        return int.from_bytes(reader.take(4), "big"), False
    return 1 << (first & 0x1F), True


def _session_key(skesk: bytes, password: bytes) -> bytes:
    """The AES key of the encrypted data, from a version 4 SKESK packet body [5.3]."""
    reader = _Reader(skesk)
    version, cipher_id = reader.byte(), reader.byte()
    if version != 4:
        raise LegacyDecryptError(f"unsupported SKESK packet version {version}")
    if cipher_id not in _AES_KEY_SIZES:
        raise LegacyDecryptError(f"unsupported cipher algorithm {cipher_id}")
    s2k_key = _s2k(reader, password, _AES_KEY_SIZES[cipher_id])
    encrypted_key = reader.rest()
    if not encrypted_key:  # no encrypted session key: the S2K output is the session key
        return s2k_key
    decrypted = _cfb_decrypt(s2k_key, bytes(_AES_BLOCK), encrypted_key)
    # The first byte names the data's cipher; garbage there means the S2K key was wrong.
    if _AES_KEY_SIZES.get(decrypted[0]) != len(decrypted) - 1:
        raise LegacyDecryptError("wrong key or not this message")
    return decrypted[1:]


def _s2k(reader: _Reader, password: bytes, key_size: int) -> bytes:
    """Read an S2K specifier and derive a ``key_size``-byte key from ``password`` [3.7]."""
    mode, digest_id = reader.byte(), reader.byte()
    if digest_id not in _S2K_DIGESTS:
        raise LegacyDecryptError(f"unsupported S2K digest algorithm {digest_id}")
    if mode not in (0, 1, 3):
        raise LegacyDecryptError(f"unsupported S2K mode {mode}")
    salted = password if mode == 0 else reader.take(_S2K_SALT_LEN) + password
    chunks = [salted]
    if mode == 3:  # iterated: salt+password repeated up to `count` bytes, at least once
        coded = reader.byte()
        count = max((16 + (coded & 15)) << ((coded >> 4) + 6), len(salted))
        block = salted * (_S2K_CHUNK // len(salted) + 1)
        whole_blocks, tail = divmod(count, len(block))
        chunks = [block] * whole_blocks + [block[:tail]]
    key, preload = b"", 0
    while len(key) < key_size:  # each further hash context is preloaded with one more zero
        context = hashlib.new(_S2K_DIGESTS[digest_id], bytes(preload))
        for chunk in chunks:
            context.update(chunk)
        key, preload = key + context.digest(), preload + 1
    return key[:key_size]


def _cfb_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-CFB decryption: P[i] = C[i] xor AES(C[i-1]), with C[0] = iv.

    Built on ECB because cryptography deprecates its CFB mode (moved to "decrepit").
    """
    blocks = -(-len(data) // _AES_BLOCK)
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    keystream = encryptor.update((iv + data)[: blocks * _AES_BLOCK]) + encryptor.finalize()
    xored = int.from_bytes(data, "big") ^ int.from_bytes(keystream[: len(data)], "big")
    return xored.to_bytes(len(data), "big")


def _check_prefix(prefix: bytes) -> None:
    """The random prefix's last two bytes are repeated; a mismatch means a wrong key [5.7]."""
    if len(prefix) < _PREFIX_LEN or prefix[_AES_BLOCK - 2 : _AES_BLOCK] != prefix[_AES_BLOCK:]:
        raise LegacyDecryptError("wrong key or not this message")


def _decrypt_seipd(key: bytes, body: bytes) -> bytes:
    """Decrypt an SEIPD body (plain CFB, zero IV) and verify its trailing MDC packet [5.13]."""
    reader = _Reader(body)
    version = reader.byte()
    if version != 1:
        raise LegacyDecryptError(f"unsupported encrypted data packet version {version}")
    decrypted = _cfb_decrypt(key, bytes(_AES_BLOCK), reader.rest())
    _check_prefix(decrypted[:_PREFIX_LEN])
    if len(decrypted) < _PREFIX_LEN + _MDC_LEN:
        raise LegacyDecryptError("truncated message")
    hashed, mdc = decrypted[:-_SHA1_LEN], decrypted[-_SHA1_LEN:]  # includes the MDC header
    if hashed[-2:] != _MDC_HEADER or not hmac.compare_digest(hashlib.sha1(hashed).digest(), mdc):
        raise LegacyDecryptError("modification detected: MDC does not match")
    return decrypted[_PREFIX_LEN:-_MDC_LEN]


def _decrypt_sed(key: bytes, body: bytes) -> bytes:
    """Decrypt a SED body: OpenPGP CFB, resynchronised after the prefix [13.9]; no MDC."""
    _check_prefix(_cfb_decrypt(key, bytes(_AES_BLOCK), body[:_PREFIX_LEN]))
    return _cfb_decrypt(key, body[2:_PREFIX_LEN], body[_PREFIX_LEN:])


def _literal_data(plaintext: bytes) -> bytes:
    """The content of the single literal packet in ``plaintext``, decompressing first if needed."""
    tag, body = _single_packet(plaintext)
    if tag == _TAG_COMPRESSED:
        tag, body = _single_packet(_decompress(body))
    if tag != _TAG_LITERAL:
        raise LegacyDecryptError(f"unexpected packet tag {tag} in the decrypted data")
    reader = _Reader(body)
    reader.byte()  # format: b(inary), t(ext) or u(tf-8); the data is returned as is
    reader.take(reader.byte())  # file name
    reader.take(4)  # modification date
    return reader.rest()


def _single_packet(data: bytes) -> tuple[int, bytes]:
    packets = _packets(data)
    if len(packets) != 1:
        raise LegacyDecryptError(f"expected one packet in the decrypted data, got {len(packets)}")
    return packets[0]


def _decompress(body: bytes) -> bytes:
    """The content of a compressed data packet body [5.6]."""
    reader = _Reader(body)
    algorithm, compressed = reader.byte(), reader.rest()
    if algorithm == 0:
        return compressed
    if algorithm not in _ZLIB_WBITS:
        raise LegacyDecryptError(f"unsupported compression algorithm {algorithm}")
    decompressor = zlib.decompressobj(_ZLIB_WBITS[algorithm])
    try:
        data = decompressor.decompress(compressed) + decompressor.flush()
    except zlib.error:
        raise LegacyDecryptError("corrupt compressed data") from None
    if not decompressor.eof:
        raise LegacyDecryptError("truncated compressed data")
    return data
