#!/usr/bin/python3
"""Writes the image fixtures of Microsoft.ML.Residual.Tests/Data/ImageFilesTests.cs into images/.

Run with the system Python and its PIL (9.4 on Debian 12):  /usr/bin/python3 make_image_fixtures.py
Only the two files SkiaSharp cannot write itself are made here; every other test image is made by the tests.

  images/cmyk.jpg            32x16 CMYK JPEG (Adobe, inverted CMYK as PIL and Photoshop write it):
                             left half pure red (C0 M100 Y100 K0), right half pure blue (C100 M100 Y0 K0).
  images/exif_orientation6.jpg  the 48x32 upright image below stored turned 90 degrees counter-clockwise (32x48)
                             with EXIF orientation 6 ("turn 90 degrees clockwise to display"): a viewer that applies
                             the tag shows 48x32 with red top-left, green top-right, blue bottom-left, white bottom-right.
"""
import os
from PIL import Image

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "images")


def cmyk():
    image = Image.new("CMYK", (32, 16), (0, 255, 255, 0))
    image.paste((255, 255, 0, 0), (16, 0, 32, 16))
    image.save(os.path.join(HERE, "cmyk.jpg"), "JPEG", quality=95)


def exif_orientation6():
    upright = Image.new("RGB", (48, 32), (255, 0, 0))
    upright.paste((0, 255, 0), (24, 0, 48, 16))
    upright.paste((0, 0, 255), (0, 16, 24, 32))
    upright.paste((255, 255, 255), (24, 16, 48, 32))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise; orientation 6 turns it back
    exif = Image.Exif()
    exif[274] = 6
    stored.save(os.path.join(HERE, "exif_orientation6.jpg"), "JPEG", quality=95, exif=exif.tobytes())


if __name__ == "__main__":
    os.makedirs(HERE, exist_ok=True)
    cmyk()
    exif_orientation6()
    for name in sorted(os.listdir(HERE)):
        print(name, os.path.getsize(os.path.join(HERE, name)), "bytes")
