"""Writes the fuzz targets' seed inputs (fuzz/seeds/<target>/): well-formed requests and
batches for the fuzzer to mutate, so it starts past the framing. Run with kafka-python:
`.venv/bin/python fuzz/make_seeds.py` (scripts/test.sh makes .venv)."""

import os
import struct

from kafka.record.default_records import DefaultRecordBatchBuilder

HERE = os.path.dirname(os.path.abspath(__file__))


def batch(codec, count, headers=()):
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=codec, is_transactional=False,
        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for i in range(count):
        builder.append(i, timestamp=1_700_000_000_000 + i, key=b"key-%d" % i,
                       value=b"value-%d" % i * 3, headers=list(headers))
    return bytes(builder.build())


def string(text):
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def header(api_key, version, correlation_id):
    # Request header v1: api key, version, correlation id, client id.
    return struct.pack(">hhi", api_key, version, correlation_id) + string("seed")


def produce_v3(records):
    body = struct.pack(">h", -1)  # transactional id: null
    body += struct.pack(">hi", -1, 30000)  # acks, timeout
    body += struct.pack(">i", 1) + string("seed-topic")
    body += struct.pack(">i", 1) + struct.pack(">i", 0)
    body += struct.pack(">i", len(records)) + records
    return header(0, 3, 7) + body


def write(target, name, data):
    with open(os.path.join(HERE, "seeds", target, name), "wb") as f:
        f.write(data)


plain = batch(0, 5)
with_headers = batch(0, 3, headers=[("h1", b"v1"), ("h2", None)])
gzipped = batch(1, 5)
write("batch_validator", "plain", plain)
write("batch_validator", "headers", with_headers)
write("batch_validator", "gzip", gzipped)
write("frame_decoder", "produce-plain", produce_v3(plain))
write("frame_decoder", "produce-gzip", produce_v3(gzipped))
write("frame_decoder", "api-versions-v0", header(18, 0, 1))
# Metadata v1: all topics (null array).
write("frame_decoder", "metadata-v1", header(3, 1, 2) + struct.pack(">i", -1))
# OffsetCommit v10 (topics by id, flexible): header v2, then group "g", epoch -1, member "",
# no instance id, one topic id with one partition (offset 5, epoch -1, null metadata).
flexible_header = header(8, 10, 3) + b"\x00"
commit_v10 = b"\x02g" + struct.pack(">i", -1) + b"\x01" + b"\x00"
commit_v10 += b"\x02" + bytes(range(16)) + b"\x02" + struct.pack(">iqi", 0, 5, -1) + b"\x00\x00\x00\x00"
write("frame_decoder", "offset-commit-v10", flexible_header + commit_v10)
