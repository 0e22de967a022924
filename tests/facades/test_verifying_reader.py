"""facades.verifying: VerifyingReader (re-chunking, hashing while streaming, counting, failing
bad data early) and check_copy (a stored copy against what was expected)."""

import hashlib
import os

import pytest

from fiwareglancesync.glancesync.errors import TransferError
from fiwareglancesync.glancesync.image import Image
from fiwareglancesync.glancesync.facades.base import CHUNK_SIZE
from fiwareglancesync.glancesync.facades.verifying import Expected, Mismatch, VerifyingReader, check_copy
from fiwareglancesync.glancesync.sources import FileSource

MIB = 1024 * 1024
DATA = os.urandom(3 * MIB + 12345)


def expected_for(data: bytes, algo: str | None = "sha512") -> Expected:
    return Expected(size=len(data), checksum=hashlib.md5(data).hexdigest(), hash_algo=algo,
                    hash_value=hashlib.new(algo, data).hexdigest() if algo else None)


def pieces(data: bytes, size: int):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def drain(reader: VerifyingReader, size: int = CHUNK_SIZE) -> list[bytes]:
    """What an HTTP client does: read(size) until b""."""
    chunks = []
    while chunk := reader.read(size):
        chunks.append(chunk)
    return chunks


@pytest.fixture(params=[True, False], ids=["threaded", "inline"])
def threaded(request):
    return request.param


@pytest.mark.parametrize("piece_size", [1, 4096, 65536, MIB, MIB + 1, 5 * MIB])
def test_chunks_are_one_mib_whatever_the_source_yields(piece_size, threaded):
    source = pieces(DATA, piece_size) if piece_size > 1 else pieces(DATA[:3000], 1)
    data = DATA if piece_size > 1 else DATA[:3000]
    with VerifyingReader(source, expected_for(data), threaded=threaded) as reader:
        chunks = drain(reader)
    assert b"".join(chunks) == data
    assert all(len(chunk) == CHUNK_SIZE for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= CHUNK_SIZE
    assert reader.md5 == hashlib.md5(data).hexdigest()
    assert reader.hash_value == hashlib.sha512(data).hexdigest()
    assert reader.bytes_read == len(data)


def test_iteration_yields_the_same_chunks(threaded):
    with VerifyingReader(pieces(DATA, 1000), expected_for(DATA), threaded=threaded) as reader:
        chunks = list(reader)
    assert b"".join(chunks) == DATA and {len(c) for c in chunks[:-1]} == {CHUNK_SIZE}


def test_read_without_size_returns_one_chunk_not_everything():
    with VerifyingReader(pieces(DATA, MIB), expected_for(DATA)) as reader:
        assert len(reader.read()) == CHUNK_SIZE
        assert len(reader.read(None)) == CHUNK_SIZE


def test_checksum_mismatch_fails_before_the_end_of_the_stream(threaded):
    wrong = Expected(size=len(DATA), checksum="0" * 32)
    reader = VerifyingReader(pieces(DATA, MIB), wrong, description="file x", threaded=threaded)
    with reader, pytest.raises(TransferError, match=r"checksum mismatch: file x has MD5 [0-9a-f]{32}, expected 0{32}"):
        drain(reader)
    assert isinstance(reader.failure, TransferError)
    with pytest.raises(TransferError):  # and it keeps failing: the body never ends cleanly
        reader.read(CHUNK_SIZE)


def test_sha512_mismatch_fails_even_when_md5_matches(threaded):
    bad = Expected(size=len(DATA), checksum=hashlib.md5(DATA).hexdigest(), hash_algo="sha512",
                   hash_value="0" * 128)
    with VerifyingReader(pieces(DATA, MIB), bad, threaded=threaded) as reader, \
            pytest.raises(TransferError, match="sha512 mismatch"):
        drain(reader)


def test_short_data_fails():
    expected = expected_for(DATA)
    with VerifyingReader(pieces(DATA[:-1], MIB), expected) as reader, \
            pytest.raises(TransferError, match=f"holds {len(DATA) - 1} bytes, expected {len(DATA)}"):
        drain(reader)


def test_too_much_data_fails_as_soon_as_it_is_read():
    """The piece that completes the expected size is not handed out before the source is seen to
    end there: a body sent with Content-Length never reaches the server complete."""
    expected = Expected(size=MIB)
    reader = VerifyingReader(pieces(DATA, MIB), expected)
    with reader:
        with pytest.raises(TransferError, match=f"more than the expected {MIB} bytes"):
            reader.read(MIB)
    assert reader.bytes_read == MIB  # the piece too many was looked at, not counted as read


def test_too_much_data_in_a_later_piece_fails_when_that_piece_is_read():
    reader = VerifyingReader(pieces(DATA, MIB), Expected(size=MIB + 10))
    with reader:
        assert len(reader.read(MIB)) == MIB
        with pytest.raises(TransferError, match=f"more than the expected {MIB + 10} bytes"):
            reader.read(MIB)


@pytest.mark.parametrize("piece_size", [MIB, 3 * MIB + 12345])
def test_with_a_known_size_bad_data_fails_before_its_last_byte_is_handed_out(piece_size, threaded):
    wrong = Expected(size=len(DATA), checksum="0" * 32)
    handed_out = 0
    with VerifyingReader(pieces(DATA, piece_size), wrong, threaded=threaded) as reader:
        with pytest.raises(TransferError, match="checksum mismatch"):
            while chunk := reader.read(CHUNK_SIZE):
                handed_out += len(chunk)
    assert handed_out < len(DATA)


def test_chunks_within_a_piece_are_views_of_it_not_copies():
    piece = os.urandom(4 * CHUNK_SIZE)
    with VerifyingReader(iter([piece]), Expected(size=len(piece))) as reader:
        chunks = drain(reader)
    assert [bytes(c) for c in chunks] == [piece[i:i + CHUNK_SIZE] for i in range(0, len(piece), CHUNK_SIZE)]
    assert all(isinstance(c, memoryview) and c.obj is piece for c in chunks)


def test_a_failing_source_becomes_a_transfer_error_and_is_closed(threaded):
    closed = []

    def source():
        try:
            yield DATA[:MIB]
            raise ConnectionResetError("peer went away")
        finally:
            closed.append(True)

    reader = VerifyingReader(source(), expected_for(DATA), description="image 42 of region Master",
                             threaded=threaded)
    with reader:
        reader.read(MIB)
        with pytest.raises(TransferError, match="reading image 42 of region Master failed: peer went away"):
            reader.read(MIB)
    assert closed == [True]
    assert "peer went away" in str(reader.failure)


def test_close_releases_an_unfinished_source():
    closed = []

    def source():
        try:
            while True:
                yield DATA[:MIB]
        finally:
            closed.append(True)

    with VerifyingReader(source(), Expected()) as reader:
        reader.read(MIB)
    assert closed == [True]


def test_unknown_expectations_accept_any_data_and_still_hash(threaded):
    with VerifyingReader(pieces(DATA, 7777), Expected(), threaded=threaded) as reader:
        assert b"".join(drain(reader)) == DATA
    assert reader.md5 == hashlib.md5(DATA).hexdigest() and reader.hash_value is None


def test_an_algorithm_python_lacks_is_skipped_md5_still_checked():
    expected = Expected(size=len(DATA), checksum=hashlib.md5(DATA).hexdigest(),
                        hash_algo="no-such-hash", hash_value="abc")
    with VerifyingReader(pieces(DATA, MIB), expected) as reader:
        assert b"".join(drain(reader)) == DATA


def test_expected_of_an_image():
    img = Image(name="a", id="1", region="R", size=10, checksum="c", os_hash_algo="sha512",
                os_hash_value="h")
    assert Expected.of(img) == Expected(size=10, checksum="c", hash_algo="sha512", hash_value="h")
    # the mock and backup CSVs carry neither size nor checksum: nothing to check
    assert Expected.of(Image(name="a", id="1", region="R")) == Expected()
    # an empty image with a checksum must be empty
    assert Expected.of(Image(name="a", id="1", region="R", checksum="d41d8cd98f00b204e9800998ecf8427e")).size == 0


def test_file_source_through_the_reader(tmp_path):
    path = tmp_path / "image"
    path.write_bytes(DATA)
    source = FileSource(str(path))
    with VerifyingReader(source.open(), expected_for(DATA), description=source.description) as reader:
        assert b"".join(drain(reader)) == DATA


def test_check_copy_of_the_expected_data_finds_nothing():
    expected = expected_for(DATA)
    record = {"size": len(DATA), "checksum": expected.checksum, "os_hash_algo": "sha512",
              "os_hash_value": expected.hash_value}
    assert check_copy(record, expected) == []


def test_check_copy_names_every_difference_in_order():
    expected = expected_for(DATA)
    record = {"size": 5, "checksum": "0" * 32, "os_hash_algo": "sha512", "os_hash_value": "f" * 128}
    assert check_copy(record, expected) == [
        Mismatch("size", 5, len(DATA)),
        Mismatch("checksum", "0" * 32, expected.checksum),
        Mismatch("hash", "f" * 128, expected.hash_value, "sha512"),
    ]


def test_check_copy_skips_what_is_not_known_and_another_hash_algorithm():
    record = {"size": 5, "checksum": "0" * 32, "os_hash_algo": "sha256", "os_hash_value": "f" * 64}
    assert check_copy(record, Expected()) == []
    assert check_copy(record, expected_for(DATA)) == [Mismatch("size", 5, len(DATA)),
                                                      Mismatch("checksum", "0" * 32, hashlib.md5(DATA).hexdigest())]
