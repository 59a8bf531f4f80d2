#!/usr/bin/env python3
"""Writes the hostile-input regression cases: files that once crashed, hung or misled odam, and what odam must do.

Usage: python3 Tools/make_hostile_inputs.py   (needs pillow and numpy for the images)

Writes Tests/HostileInputs/{images,weights,specs}/ and Tests/HostileInputs/cases.json, a list of
  {"file": "images/exif_ifd_wrap.jpg", "kind": "image|weights|spec", "expect": "ok" | "error", "error": "substring"}
The Swift tests read cases.json: an "ok" case must load, an "error" case must fail with an error that contains the
substring (and names the file). The fuzzing harness (Tools/fuzz) uses the same files as its seed corpus.
Cases that git cannot hold (a FIFO, a symbolic link, a name that is not UTF-8) are made by the tests themselves.
"""
import io
import json
import os
import struct
import zipfile

import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "HostileInputs")
cases = []


def write(kind, name, data, expect, error=""):
    folder = {"image": "images", "weights": "weights", "spec": "specs"}[kind]
    os.makedirs(os.path.join(ROOT, folder), exist_ok=True)
    path = os.path.join(ROOT, folder, name)
    with open(path, "wb") as f:
        f.write(data)
    cases.append({"file": f"{folder}/{name}", "kind": kind, "expect": expect, "error": error})


def jpeg(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


def png(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


rng = np.random.default_rng(0)
smooth = Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).resize((64, 48), Image.BILINEAR)

# ---- images ----
# An APP1 EXIF segment whose IFD offset is 0xFFFFFFFE: `ifd + 2` wrapped in 32 bits and read far out of bounds.
plain = jpeg(smooth)
exif = b"Exif\0\0" + b"II*\0" + struct.pack("<I", 0xFFFFFFFE) + b"\0" * 18
segment = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
write("image", "exif_ifd_wrap.jpg", plain[:2] + segment + plain[2:], "ok")
# The same with big-endian byte order and an IFD offset just past the segment.
exif = b"Exif\0\0" + b"MM\0*" + struct.pack(">I", 27) + b"\0" * 18
segment = b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
write("image", "exif_ifd_past_end.jpg", plain[:2] + segment + plain[2:], "ok")
# CMYK as PIL (and Adobe) write it: inverted, with an APP14 marker. The expected RGB is PIL's own decoding.
cmyk = jpeg(smooth.convert("CMYK"))
write("image", "cmyk.jpg", cmyk, "ok")
expected = Image.open(io.BytesIO(cmyk)).convert("RGB")
write("image", "cmyk.expected.png", png(expected), "ok")
# Degenerate geometry: boxes with NaN coordinates once came out of these.
write("image", "thin_wide.png", png(Image.new("RGB", (4000, 3), (120, 90, 60))), "ok")
write("image", "thin_tall.png", png(Image.new("RGB", (3, 4000), (60, 90, 120))), "ok")
write("image", "one_pixel.png", png(Image.new("RGB", (1, 1), (200, 10, 10))), "ok")
# A 1-bit PNG of 100 million pixels in a few kilobytes: over the default pixel limit.
write("image", "bomb_100mp.png", png(Image.new("1", (10000, 10000), 0), optimize=True), "error", "pixels exceed the limit")
# Truncated and corrupt files.
write("image", "truncated.jpg", plain[: len(plain) // 2], "error", "truncated JPEG")
write("image", "truncated.png", png(smooth)[:200], "error", "truncated PNG")
write("image", "garbage.png", b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 256, 300, dtype=np.uint8)), "error", "PNG")
write("image", "not_an_image.jpg", b"%PDF-1.4 this is not an image\n", "error", "not a JPEG or PNG")
write("image", "empty.png", b"", "error", "empty file")


# ---- weights ----
def safetensors(header, data=b""):
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


write("weights", "header_length_max.safetensors", struct.pack("<Q", 2**64 - 1) + b"{}", "error", "header length")
write("weights", "header_length_2p63.safetensors", struct.pack("<Q", 2**63) + b"{}", "error", "header length")
write("weights", "shape_wraps.safetensors", safetensors({"w": {"dtype": "F32", "shape": [2**62, 4], "data_offsets": [0, 0]}}),
      "error", "overflows")
write("weights", "offsets_huge.safetensors",
      safetensors({"w": {"dtype": "F32", "shape": [1], "data_offsets": [2**63 - 8, 2**63 - 4]}}), "error", "spans bytes")


def checkpoint(pickle_bytes, storages=None):
    """A torch.save-style zip (stored entries) around `pickle_bytes`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        # A fixed date, so that the files are the same on every run of this script.
        def add(name, data):
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)

        add("archive/data.pkl", pickle_bytes)
        add("archive/byteorder", "little")
        for key, data in (storages or {}).items():
            add(f"archive/data/{key}", data)
    return buffer.getvalue()


def short(text):
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


PROTO = b"\x80\x02"
# BINUNICODE8 with a length near 2^63: `position + count` overflowed.
write("weights", "binunicode8_huge.pth", checkpoint(PROTO + b"\x8d" + struct.pack("<Q", 2**63 - 2) + b"abc."), "error",
      "data ends inside an opcode")


def tensor_pickle(offset, size, stride):
    """{'w': _rebuild_tensor_v2(storage '0' (FloatStorage), offset, (size,), (stride,), False, OrderedDict())}"""
    return (PROTO + b"}" + short("w") + short("torch._utils") + short("_rebuild_tensor_v2") + b"\x93"
            + b"(" + b"(" + short("storage") + short("torch") + short("FloatStorage") + b"\x93" + short("0")
            + short("cpu") + b"K\x01" + b"tQ"
            + b"\x8a\x08" + struct.pack("<q", offset) + b"\x8a\x08" + struct.pack("<q", size) + b"\x85"
            + b"\x8a\x08" + struct.pack("<q", stride) + b"\x85" + b"\x89" + short("collections") + short("OrderedDict")
            + b"\x93)R" + b"tR" + b"s.")


write("weights", "tensor_offset_huge.pth", checkpoint(tensor_pickle(2**62, 1, 1), {"0": b"\0" * 4}), "error",
      "exceeds its storage")
write("weights", "tensor_shape_huge.pth", checkpoint(tensor_pickle(0, 2**62, 2**40), {"0": b"\0" * 4}), "error",
      "exceeds its storage")
write("weights", "tensor_ok.pth", checkpoint(tensor_pickle(0, 1, 1), {"0": b"\0" * 4}), "ok")
# A dict that contains itself through the memo: {'a': <itself>}.
write("weights", "self_reference.pth", checkpoint(PROTO + b"}\x94" + short("a") + b"h\x00s."), "error", "contains itself")
# 300,000 nested tuples, dicts and lists: recursion (building, flattening or freeing them) overflowed the stack.
levels = 300_000
write("weights", "nested_tuples.pth", checkpoint(PROTO + b"}" + short("a") + b")" + b"\x85" * levels + b"s."), "error",
      "nested deeper")
write("weights", "nested_dicts.pth", checkpoint(PROTO + (b"}" + short("a")) * levels + b"}" + b"s" * levels + b"."),
      "error", "nested deeper")
write("weights", "nested_lists.pth",
      checkpoint(PROTO + b"}" + short("a") + b"]" * levels + b"a" * (levels - 1) + b"s."), "error", "no tensors")
# Found by Tools/fuzz: SETITEM after MARK pops below the mark, and TUPLE then sliced the stack past its end.
write("weights", "mark_above_stack.pth", checkpoint(PROTO + b"}" + short("a") + short("b") + b"(" + b"s" + b"t" + b"."), "error",
      "shrank below its mark")
# Code execution attempts stay refused.
write("weights", "os_system.pth", checkpoint(PROTO + short("os") + short("system") + b"\x93" + short("id") + b"\x85R."),
      "error", "refusing global os.system")


def zip64_giant_entry():
    """A zip whose only central-directory entry claims, through its zip64 extra field, 2^63-1 stored bytes."""
    name = b"archive/data.pkl"
    payload = b"\x80\x02}."
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF, len(name), 0) + name + payload
    extra = struct.pack("<HHQQ", 1, 16, 2**63 - 1, 2**63 - 1)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF, len(name),
                          len(extra), 0, 0, 0, 0, 0) + name + extra
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local), 0)
    return local + central + end


write("weights", "zip64_giant_entry.pth", zip64_giant_entry(), "error", "runs past the end of the file")
write("weights", "zip_directory_offset.pth",
      b"PK\x03\x04" + b"\0" * 26 + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, 46, 0xFFFFFFF0, 0), "error",
      "zip structure runs past the end")

# ---- job specs ----
specs = {
    "name_list.yaml": ("name: [a, b]\n", "name"),
    "shard_size_text.yaml": ("shard_size: sixteen\n", "shard_size"),
    "shard_size_float.yaml": ("shard_size: 1e3\n", "shard_size"),
    "score_negative.yaml": ("nms:\n  score_threshold: -5\n", "nms.score_threshold"),
    "store_empty_path.yaml": ("output:\n  store: \"file://\"\n", "output.store"),
    "integer_20_digits.yaml": ("shard_size: 12345678901234567890\n", "shard_size"),
    "shard_size_zero.yaml": ("shard_size: 0\n", "shard_size"),
    "source_not_mapping.yaml": ("source: /data\n", "source"),
    "low_above_high.yaml": ("nms:\n  low: 0.9\n  high: 0.2\n", "nms.low"),
    "unknown_key.yaml": ("shardsize: 4\n", "shardsize"),
    "not_a_mapping.yaml": ("- a\n- b\n", "mapping"),
    "nested_deep.json": ("[" * 100_000 + "]" * 100_000, "nested"),
    # 200,000 nested flow sequences: odam's own YAML reader once copied the text at every level (tens of GB); libyaml
    # (through Yams) stops at its nesting limit.
    "nested_flow.yaml": ("name: " + "[" * 200_000 + "]" * 200_000 + "\n", "nesting level"),
}
for name, (text, error) in specs.items():
    write("spec", name, text.encode(), "error", error)
write("spec", "ok.yaml", b"name: fine\nshard_size: 4\nmax_pixels: 1000000\nsource:\n  url: https://example.org/x\n", "ok")

with open(os.path.join(ROOT, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
    f.write("\n")
print(f"wrote {len(cases)} cases to {os.path.normpath(ROOT)}")
