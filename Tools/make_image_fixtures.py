#!/usr/bin/env python3
"""Writes the image-decoding fixtures: small images in many PNG/JPEG flavours and PIL's RGB pixels for each.

Usage: python3 Tools/make_image_fixtures.py   (needs pillow, numpy, safetensors)
Tests/VisionTests/Fixtures/
  NAME.png / NAME.jpg      crops of ../shared/data/sample-images saved in each flavour
  expected.safetensors     NAME -> uint8 [H, W, 3]: PIL's Image.open(...).convert("RGB") (for 16-bit PNGs, whose
                           conversion PIL does not define the same way, the high byte of each sample)
  bomb.png                 a valid 20000x20000 1-bit PNG of about 50 kB (the decompression-bomb guard must refuse it)
  exif_rotated.jpg         a JPEG whose EXIF orientation is 6 (rotate 90° clockwise to display)
"""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.join(HERE, "..", "..", "shared", "data", "sample-images")
OUT = os.path.join(HERE, "..", "Tests", "VisionTests", "Fixtures")


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png16(array, color_type):
    """A 16-bit PNG written by hand (PIL cannot write 16-bit RGB)."""
    h, w = array.shape[:2]
    raw = b"".join(b"\0" + array[y].astype(">u2").tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def bomb(side=20000):
    row = b"\0" + b"\0" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def main():
    os.makedirs(OUT, exist_ok=True)
    expected = {}
    astronaut = Image.open(os.path.join(SAMPLES, "astronaut.png")).convert("RGB").crop((100, 50, 197, 121))  # 97x71, odd sizes
    rocket = Image.open(os.path.join(SAMPLES, "rocket.jpg")).convert("RGB").crop((10, 20, 131, 109))
    variants = {
        "rgb.png": (astronaut, {}),
        "rgba.png": (astronaut.convert("RGBA"), {}),
        "gray.png": (astronaut.convert("L"), {}),
        "gray_alpha.png": (astronaut.convert("LA"), {}),
        "palette.png": (astronaut.convert("P", palette=Image.ADAPTIVE, colors=64), {}),
        "bilevel.png": (astronaut.convert("1"), {}),
        "interlaced.png": (astronaut, {"interlace": 1}),
        "baseline.jpg": (rocket, {"quality": 90}),
        "baseline444.jpg": (rocket, {"quality": 95, "subsampling": 0}),
        "progressive.jpg": (rocket, {"quality": 85, "progressive": True}),
        "gray.jpg": (rocket.convert("L"), {"quality": 90}),
    }
    for name, (image, options) in variants.items():
        path = os.path.join(OUT, name)
        image.save(path, **options)
        expected[name] = np.asarray(Image.open(path).convert("RGB"))
    # Palette with transparency: PIL's RGB conversion drops the alpha, as odam does.
    paletted = astronaut.convert("P", palette=Image.ADAPTIVE, colors=32)
    path = os.path.join(OUT, "palette_transparent.png")
    paletted.save(path, transparency=bytes([0] * 8 + [255] * 24))
    expected["palette_transparent.png"] = np.asarray(Image.open(path).convert("RGB"))
    # 16-bit: random samples, expected = high byte.
    rng = np.random.default_rng(0)
    rgb16 = rng.integers(0, 65536, size=(23, 31, 3), dtype=np.uint16)
    open(os.path.join(OUT, "rgb16.png"), "wb").write(png16(rgb16, 2))
    expected["rgb16.png"] = (rgb16 >> 8).astype(np.uint8)
    gray16 = rng.integers(0, 65536, size=(17, 13), dtype=np.uint16)
    open(os.path.join(OUT, "gray16.png"), "wb").write(png16(gray16, 0))
    expected["gray16.png"] = np.repeat((gray16 >> 8).astype(np.uint8)[:, :, None], 3, axis=2)
    open(os.path.join(OUT, "bomb.png"), "wb").write(bomb())
    # EXIF orientation 6 on a non-square JPEG.
    exif = Image.Exif()
    exif[0x0112] = 6
    path = os.path.join(OUT, "exif_rotated.jpg")
    rocket.save(path, quality=90, exif=exif.tobytes())
    stored = np.asarray(Image.open(path).convert("RGB"))
    expected["exif_rotated.jpg"] = stored
    expected["exif_rotated.jpg.displayed"] = np.ascontiguousarray(np.rot90(stored, k=-1))
    save_file({k: np.ascontiguousarray(v) for k, v in expected.items()}, os.path.join(OUT, "expected.safetensors"))
    print(len(expected), "expected images")


if __name__ == "__main__":
    main()
