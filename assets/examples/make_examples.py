"""Draw the example subject images (flat illustrations) so the repo needs no downloads.

    python assets/examples/make_examples.py      # rewrites the PNGs next to this file
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 384
HERE = Path(__file__).parent


def _person(path: Path, *, background, skin, hair, shirt, trousers, long_hair: bool) -> None:
    image = Image.new("RGB", (SIZE, SIZE), background)
    d = ImageDraw.Draw(image)
    cx = SIZE // 2
    d.rounded_rectangle((cx - 62, 150, cx + 62, 290), radius=40, fill=shirt)       # torso
    d.rectangle((cx - 50, 280, cx - 8, 372), fill=trousers)                        # legs
    d.rectangle((cx + 8, 280, cx + 50, 372), fill=trousers)
    d.rounded_rectangle((cx - 92, 160, cx - 62, 270), radius=15, fill=shirt)       # arms
    d.rounded_rectangle((cx + 62, 160, cx + 92, 270), radius=15, fill=shirt)
    d.ellipse((cx - 90, 258, cx - 64, 284), fill=skin)                             # hands
    d.ellipse((cx + 64, 258, cx + 90, 284), fill=skin)
    d.rectangle((cx - 14, 128, cx + 14, 156), fill=skin)                           # neck
    if long_hair:
        d.rounded_rectangle((cx - 60, 40, cx + 60, 175), radius=45, fill=hair)
    d.ellipse((cx - 48, 42, cx + 48, 142), fill=skin)                              # face
    d.chord((cx - 52, 34, cx + 52, 120), 180, 360, fill=hair)                      # fringe
    for ex in (cx - 18, cx + 18):
        d.ellipse((ex - 6, 86, ex + 6, 98), fill=(40, 40, 50))
    d.arc((cx - 18, 100, cx + 18, 124), 20, 160, fill=(150, 60, 60), width=4)
    image.save(path)


def _dog(path: Path) -> None:
    image = Image.new("RGB", (SIZE, SIZE), (232, 244, 236))
    d = ImageDraw.Draw(image)
    fur, dark = (205, 150, 90), (120, 80, 45)
    d.rounded_rectangle((90, 190, 300, 280), radius=45, fill=fur)                  # body
    for x in (105, 145, 240, 275):
        d.rounded_rectangle((x, 260, x + 24, 340), radius=10, fill=fur)            # legs
    d.polygon([(295, 205), (345, 160), (352, 172), (305, 225)], fill=fur)          # tail
    d.ellipse((50, 110, 170, 220), fill=fur)                                       # head
    d.ellipse((40, 115, 78, 190), fill=dark)                                       # ears
    d.ellipse((142, 115, 180, 190), fill=dark)
    d.ellipse((88, 150, 100, 162), fill=(30, 30, 30))
    d.ellipse((120, 150, 132, 162), fill=(30, 30, 30))
    d.ellipse((100, 178, 120, 192), fill=(30, 30, 30))                             # nose
    d.rectangle((90, 222, 170, 232), fill=(220, 60, 60))                           # collar
    image.save(path)


def _robot(path: Path) -> None:
    image = Image.new("RGB", (SIZE, SIZE), (236, 236, 248))
    d = ImageDraw.Draw(image)
    metal, accent = (150, 165, 185), (255, 160, 40)
    d.line((192, 30, 192, 60), fill=metal, width=6)
    d.ellipse((182, 20, 202, 40), fill=accent)
    d.rounded_rectangle((132, 60, 252, 150), radius=18, fill=metal)                # head
    d.ellipse((155, 90, 180, 115), fill=(60, 200, 255))
    d.ellipse((204, 90, 229, 115), fill=(60, 200, 255))
    d.rounded_rectangle((118, 162, 266, 300), radius=20, fill=metal)               # body
    d.rounded_rectangle((160, 190, 224, 240), radius=8, fill=accent)
    d.rounded_rectangle((82, 170, 112, 280), radius=14, fill=metal)                # arms
    d.rounded_rectangle((272, 170, 302, 280), radius=14, fill=metal)
    d.rounded_rectangle((140, 300, 178, 370), radius=10, fill=metal)               # legs
    d.rounded_rectangle((206, 300, 244, 370), radius=10, fill=metal)
    image.save(path)


def main() -> None:
    _person(HERE / "mia.png", background=(250, 236, 228), skin=(241, 194, 160),
            hair=(90, 50, 30), shirt=(220, 70, 90), trousers=(50, 60, 110), long_hair=True)
    _person(HERE / "leo.png", background=(226, 238, 250), skin=(190, 135, 95),
            hair=(30, 25, 25), shirt=(60, 140, 210), trousers=(70, 70, 70), long_hair=False)
    _dog(HERE / "biscuit.png")
    _robot(HERE / "bolt.png")


if __name__ == "__main__":
    main()
