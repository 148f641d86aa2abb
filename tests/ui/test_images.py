"""Safe decoding of uploads: every odd file either becomes 8-bit RGB or a clear ImageError."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ui.images import MAX_PIXELS, MAX_SIDE, ImageError, load_image


def _png_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **kwargs)
    return buffer.getvalue()


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring a huge canvas (pixels never decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def test_rgb_png_round_trips_pixels():
    pixels = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    image = load_image(_png_bytes(Image.fromarray(pixels)))
    assert image.mode == "RGB" and image.size == (60, 40)
    assert np.array_equal(np.asarray(image), pixels)


def test_path_input(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (10, 12), (1, 2, 3)).save(path)
    assert load_image(path).getpixel((0, 0)) == (1, 2, 3)


def test_alpha_is_flattened_on_white():
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    image = load_image(_png_bytes(rgba))
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (255, 0, 0)
    assert image.getpixel((5, 5)) == (255, 255, 255)


def test_cmyk_jpeg_becomes_rgb():
    buffer = io.BytesIO()
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(buffer, format="JPEG")
    image = load_image(buffer.getvalue())
    assert image.mode == "RGB"
    r, g, b = image.getpixel((8, 8))
    assert r > 200 and g < 60 and b < 60  # pure red in CMYK


def test_16_bit_greyscale_scales_not_clips():
    grey = Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16))
    image = load_image(_png_bytes(grey))
    assert image.mode == "RGB"
    assert 120 <= image.getpixel((0, 0))[0] <= 135  # half of 16-bit → half of 8-bit


def test_palette_image():
    image = load_image(_png_bytes(Image.new("P", (8, 8), 3)))
    assert image.mode == "RGB"


def test_exif_rotation_is_applied():
    tall = Image.new("RGB", (20, 40), (0, 0, 255))
    exif = tall.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buffer = io.BytesIO()
    tall.save(buffer, format="JPEG", exif=exif)
    assert load_image(buffer.getvalue()).size == (40, 20)


def test_large_images_are_downscaled():
    image = load_image(_png_bytes(Image.new("RGB", (MAX_SIDE * 2, 100))))
    assert max(image.size) == MAX_SIDE


@pytest.mark.parametrize("data, words", [
    (b"", "was given"),
    (b"this is not an image at all", "not an image"),
    (_png_bytes(Image.new("RGB", (64, 64)))[:60], "damaged"),
    (_bomb_png(20000, 20000), "too large"),
])
def test_bad_inputs_raise_clear_errors(data, words):
    with pytest.raises(ImageError) as info:
        load_image(data, what="subject image")
    message = str(info.value)
    assert words in message
    assert "." in message and len(message) < 240  # one sentence or two, saying what to do


def test_bomb_limit_is_header_based():
    # Just over the limit: refused from the header, before decoding a single pixel.
    side = int(MAX_PIXELS ** 0.5) + 1
    with pytest.raises(ImageError, match="megapixels"):
        load_image(_bomb_png(side, side))


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="could not be found"):
        load_image(tmp_path / "gone.png")


def _float_tiff(tmp_path, pixels: np.ndarray) -> str:
    """A real 32-bit float TIFF (mode "F") written by PIL from numpy."""
    path = tmp_path / "float.tiff"
    Image.fromarray(pixels.astype(np.float32)).save(path, format="TIFF")
    with Image.open(path) as check:
        assert check.mode == "F"
    return str(path)


def test_float32_tiff_in_0_1_is_scaled_not_black(tmp_path):
    ramp = np.linspace(0.0, 1.0, 64 * 32, dtype=np.float32).reshape(32, 64)
    grey = np.asarray(load_image(_float_tiff(tmp_path, ramp)))[..., 0].astype(int)
    assert grey.min() == 0 and grey.max() == 255  # a plain F->L conversion gives 0 and 1 only
    assert abs(grey[16, 32] - round(ramp[16, 32] * 255)) <= 1


def test_float32_tiff_in_0_255_is_kept(tmp_path):
    pixels = np.full((16, 16), 200.0)
    assert np.asarray(load_image(_float_tiff(tmp_path, pixels)))[0, 0].tolist() == [200, 200, 200]


@pytest.mark.parametrize("value, words", [(np.nan, "non-finite"), (np.inf, "non-finite"),
                                          (-40.0, "from -40 to"), (1e6, "not 0–1 or 0–255")])
def test_float32_tiff_without_a_picture_range_is_refused(tmp_path, value, words):
    pixels = np.full((16, 16), 0.5)
    pixels[3, 3] = value
    with pytest.raises(ImageError, match=words):
        load_image(_float_tiff(tmp_path, pixels), what="image of Mia")
