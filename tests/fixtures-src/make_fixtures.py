#!/usr/bin/env python3
"""Generates the small binary fixtures of tests/Peft.Engine.Tests/Fixtures (NumPy archives) and
tests/Peft.Data.Tests/Fixtures (images).

Run once by hand (`/usr/bin/python3 tests/fixtures-src/make_fixtures.py`) after changing it; the
outputs are committed, so the tests need neither Python, NumPy nor Pillow. Every value is fixed,
so a rerun reproduces the same arrays and pixels (the C# tests state them again, by hand).
"""
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

TESTS = Path(__file__).resolve().parent.parent
OUT_ARRAYS = TESTS / "Peft.Engine.Tests" / "Fixtures"
OUT = TESTS / "Peft.Data.Tests" / "Fixtures"


def arrays():
    return {
        "f32": np.array([[1.5, -2.0, 3.25], [0.0, 1e-3, -7.5]], dtype=np.float32),
        "f64": np.array([np.pi, -np.e, 1e300], dtype=np.float64),
        "i64": np.array([[-(2**40), 0], [7, 2**62]], dtype=np.int64),
        "u8": np.array([0, 1, 127, 128, 255], dtype=np.uint8),
        "flags": np.array([True, False, True, True], dtype=np.bool_),
        # Column-major: the file stores 1 4 2 5 3 6 with fortran_order True.
        "fortran": np.asfortranarray(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32)),
        "scalar": np.array(42.5, dtype=np.float32),
        "half": np.array([0.5, -1.0, 65504.0], dtype=np.float16),
        "i16be": np.array([1, -2, 300], dtype=">i2"),
    }


def write_png(path, width, height, color_type, bit_depth, rows):
    """Writes a PNG by hand (Pillow cannot write 16-bit RGB): one IDAT, filter 0 on every row."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + row for row in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def images():
    # 4 wide, 3 high: pixel (x, y) = (10*x + y, 100 + x, 200 - 10*y)
    rgb = np.array([[[10 * x + y, 100 + x, 200 - 10 * y] for x in range(4)] for y in range(3)], dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(OUT / "rgb_4x3.png")

    gray = np.array([[0, 50, 100, 150, 200], [255, 1, 2, 3, 4]], dtype=np.uint8)  # 5 wide, 2 high
    Image.fromarray(gray, "L").save(OUT / "gray_5x2.png")

    rgba = np.array([[[255, 0, 0, 255], [0, 255, 0, 128], [0, 0, 255, 0]],
                     [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]], dtype=np.uint8)  # 3 wide, 2 high
    Image.fromarray(rgba, "RGBA").save(OUT / "rgba_3x2.png")

    palette = Image.new("P", (2, 2))
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 17, 34, 51])
    palette.putdata([0, 1, 2, 3])
    palette.save(OUT / "palette_2x2.png")

    # 16-bit RGB, 2 wide, 1 high: samples 0x1234 0xABCD 0xFF00 / 0x00FF 0x8000 0xFFFF
    samples = [0x1234, 0xABCD, 0xFF00, 0x00FF, 0x8000, 0xFFFF]
    write_png(OUT / "rgb16_2x1.png", 2, 1, 2, 16, [struct.pack(">6H", *samples)])
    # 16-bit gray, 3 wide, 1 high
    write_png(OUT / "gray16_3x1.png", 3, 1, 0, 16, [struct.pack(">3H", 0x0000, 0x7F80, 0xFFFF)])
    # A well-formed header announcing 100000 x 100000 pixels (no pixel data): must be refused unread.
    write_png(OUT / "huge_100000x100000.png", 100000, 100000, 0, 8, [])

    Image.new("RGB", (16, 16), (200, 100, 50)).save(OUT / "flat_16x16.jpg", quality=95)
    Image.new("L", (8, 8), 77).save(OUT / "gray_8x8.jpg", quality=95)
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(OUT / "cmyk_8x8.jpg", quality=95)  # pure red ink

    # A textured JPEG and the pixels Pillow (also libjpeg-turbo) decodes from it, for an exact check.
    yy, xx = np.mgrid[0:8, 0:16]
    texture = np.stack([xx * 16, yy * 32, (xx * yy * 7) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(texture, "RGB").save(OUT / "texture_16x8.jpg", quality=90, subsampling=0)
    (OUT / "texture_16x8.rgb").write_bytes(np.asarray(Image.open(OUT / "texture_16x8.jpg").convert("RGB")).tobytes())
    more_images(rgb, rgba, palette, texture)


def more_images(rgb, rgba, palette, texture):
    """WebP, BMP, GIF, gray+alpha PNG and progressive JPEG: the formats SkiaSharp decodes beyond the first set."""
    # Lossless WebP keeps every pixel; exact=True keeps the colour under alpha 0 too.
    Image.fromarray(rgb, "RGB").save(OUT / "rgb_4x3.webp", lossless=True)
    Image.fromarray(rgba, "RGBA").save(OUT / "rgba_3x2.webp", lossless=True, exact=True)
    # Lossy WebP and what libwebp (dwebp, through Pillow) decodes from it.
    Image.fromarray(texture, "RGB").save(OUT / "texture_16x8.webp", quality=80)
    (OUT / "texture_16x8_webp.rgb").write_bytes(np.asarray(Image.open(OUT / "texture_16x8.webp").convert("RGB")).tobytes())
    # Progressive JPEG and Pillow's decode of it.
    Image.fromarray(texture, "RGB").save(OUT / "texture_16x8_progressive.jpg", quality=90, subsampling=0, progressive=True)
    (OUT / "texture_16x8_progressive.rgb").write_bytes(
        np.asarray(Image.open(OUT / "texture_16x8_progressive.jpg").convert("RGB")).tobytes())

    # 8-bit palette BMP (Pillow writes P images with a palette) and GIF of the same 2x2 palette image.
    palette.save(OUT / "palette_2x2.bmp")
    palette.save(OUT / "palette_2x2.gif")

    # Gray + alpha PNG, 2 wide, 1 high: (gray, alpha) = (10, 255), (200, 0).
    Image.fromarray(np.array([[[10, 255], [200, 0]]], dtype=np.uint8), "LA").save(OUT / "gray_alpha_2x1.png")


def main():
    OUT_ARRAYS.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    data = arrays()
    np.savez(OUT_ARRAYS / "arrays.npz", **data)
    np.savez_compressed(OUT_ARRAYS / "arrays_compressed.npz", **data)
    images()


if __name__ == "__main__":
    main()
