"""Safe decoding of user images (subject references, pose photos, recipe PNGs).

Everything a browser can upload lands here first, so the rest of the studio only ever sees a
small, upright, 8-bit RGB ``PIL.Image``. PIL and numpy: no gradio, no torch.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# A 4096 x 4096 canvas is the largest scene we generate; references bigger than ~40 MP are
# refused before their pixels are decoded (PIL's own bomb check only warns below 2x its limit).
MAX_PIXELS = 40_000_000
# References are downscaled to this longer side: the engine resizes them anyway (UNO uses 512).
MAX_SIDE = 1536


class ImageError(ValueError):
    """An upload that is not a usable image; the message says what to do."""


def load_image(source: str | os.PathLike | bytes | Image.Image, *, what: str = "image",
               max_side: int | None = MAX_SIDE) -> Image.Image:
    """Decode ``source`` into an upright 8-bit RGB image, or raise ``ImageError``.

    Args:
        source: a file path, the file's bytes, or an already open PIL image.
        what: how to name the image in error messages ("subject image 2", "pose photo").
        max_side: downscale so the longer side is at most this many pixels (None keeps the size).
    """
    image = _open_checked(source, what)
    try:
        image.load()
        # Phone photos store "rotate 90" as an EXIF tag; without this the subject lies on its side.
        image = ImageOps.exif_transpose(image)
        image = _to_rgb(image, what)
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageError(f"The {what} could not be decoded ({err}). Re-save it as PNG or JPEG "
                         f"and upload it again.") from err
    if max_side is not None and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def _open_checked(source, what: str) -> Image.Image:
    """Open lazily and check the header-declared size before decoding any pixel."""
    if isinstance(source, Image.Image):
        _check_pixels(source.size, what)
        return source
    if source is None or (isinstance(source, (str, bytes)) and not source):
        raise ImageError(f"No {what} was given. Upload a PNG, JPEG or WebP file.")
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else _read_file(source, what)
    try:
        # verify() walks the file structure without decoding pixels: it catches truncated or
        # corrupt files early. It leaves the image unusable, hence the second open.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                _check_pixels(probe.size, what)
                probe.verify()
            image = Image.open(io.BytesIO(data))
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise _too_big(what) from err
    except UnidentifiedImageError as err:
        raise ImageError(f"The {what} is not an image PIL can read. Upload a PNG, JPEG or WebP "
                         f"file.") from err
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageError(f"The {what} is damaged or truncated ({err}). Re-save it as PNG or "
                         f"JPEG and upload it again.") from err
    return image


def _read_file(path, what: str) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"The {what} file could not be found. Upload it again.")
    return path.read_bytes()


def _check_pixels(size: tuple[int, int], what: str) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"The {what} is empty (0 pixels). Upload a real picture.")
    if width * height > MAX_PIXELS:
        raise _too_big(what, size)


def _too_big(what: str, size: tuple[int, int] | None = None) -> ImageError:
    dims = f" ({size[0]}x{size[1]})" if size else ""
    return ImageError(f"The {what} is too large{dims}: the limit is "
                      f"{MAX_PIXELS // 1_000_000} megapixels. Resize it and upload it again.")


def _to_rgb(image: Image.Image, what: str = "image") -> Image.Image:
    """Flatten any mode (CMYK, palette, 16-bit, float, alpha) to 8-bit RGB on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits instead of clipping everything to white.
        image = image.point(lambda v: v / 256).convert("L")
    elif image.mode == "F":
        image = _float_to_grey(image, what)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        # A transparent cut-out becomes a subject on white, not on black.
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _float_to_grey(image: Image.Image, what: str) -> Image.Image:
    """32-bit float pixels (float TIFFs) as 8-bit grey. Float images mean 0–1 by convention:
    scaled to 0–255 (a plain conversion would clip them to black); 0–255 data is kept; any
    other range is no picture, and is refused rather than guessed."""
    pixels = np.asarray(image, dtype=np.float32)  # PIL's getextrema skips NaNs
    if not np.isfinite(pixels).all():
        raise ImageError(f"The {what} has non-finite pixels (NaN or infinity). Save it as an "
                         f"8-bit PNG or JPEG and upload it again.")
    low, high = float(pixels.min()), float(pixels.max())
    if 0 <= low and high <= 1:
        image = image.point(lambda v: v * 255)
    elif not (0 <= low and high <= 255):
        raise ImageError(f"The {what} holds floating-point pixels from {low:g} to {high:g}, not "
                         f"0–1 or 0–255. Save it as an 8-bit PNG or JPEG and upload it again.")
    return image.convert("L")
