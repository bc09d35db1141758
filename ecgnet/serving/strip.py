"""strip.png of a labelled recording: the ECG on paper-like grid, each beat marked with its class and probability.

Drawn with Pillow, not matplotlib: importing matplotlib and laying out a figure takes longer than labelling the
30-minute recording the strip comes from. The trace is drawn at twice the size and scaled down (anti-aliased);
the grid is the ECG paper's: 0.2 s and 0.5 mV boxes, each of five small ones (0.04 s, 0.1 mV).
"""
from __future__ import annotations

from typing import IO

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..constants import CLASS_COLOURS, UNCERTAIN

DPI = 110                             # pixels per inch of the saved image
HEIGHT_IN, MIN_WIDTH_IN, INCH_PER_S = 3.2, 8.0, 0.9
MARGIN = {"left": 70, "right": 15, "top": 52, "bottom": 42}  # pixels: lead and labels, title and beat labels, time axis
SMALL_BOX = (0.04, 0.1)               # s, mV
GRID = {"minor": (253, 226, 226), "major": (244, 178, 178), "frame": (90, 90, 90)}
OVERSAMPLE = 2


def strip_image(signal: np.ndarray, fs: float, samples: np.ndarray, names: np.ndarray, probabilities: np.ndarray,
                lo: int, hi: int, lead: str, title: str) -> Image.Image:
    """The strip ``signal[lo:hi]`` (mV) with each beat at ``samples`` marked by its class name and probability."""
    seconds = (hi - lo) / fs
    width, height = int(max(MIN_WIDTH_IN, seconds * INCH_PER_S) * DPI), int(HEIGHT_IN * DPI)
    box = (MARGIN["left"], MARGIN["top"], width - MARGIN["right"], height - MARGIN["bottom"])
    trace = np.asarray(signal[lo:hi], float)
    finite = trace[np.isfinite(trace)]
    bottom, top = (float(finite.min()), float(finite.max())) if len(finite) else (-1.0, 1.0)
    pad = max(0.1 * (top - bottom), 0.25)
    bottom, top = bottom - pad, top + pad

    def x_of(t: np.ndarray) -> np.ndarray:
        return box[0] + (np.asarray(t) - lo / fs) / seconds * (box[2] - box[0])

    def y_of(v: np.ndarray) -> np.ndarray:
        return box[3] - (np.asarray(v) - bottom) / (top - bottom) * (box[3] - box[1])

    big = Image.new("RGB", (width * OVERSAMPLE, height * OVERSAMPLE), "white")
    draw = ImageDraw.Draw(big)
    scaled = [c * OVERSAMPLE for c in box]
    for level, step in (("minor", 1), ("major", 5)):
        for t in np.arange(np.ceil(lo / fs / (SMALL_BOX[0] * step)), hi / fs / (SMALL_BOX[0] * step)) * SMALL_BOX[0] * step:
            x = float(x_of(t)) * OVERSAMPLE
            draw.line([(x, scaled[1]), (x, scaled[3])], fill=GRID[level], width=OVERSAMPLE)
        for v in np.arange(np.ceil(bottom / (SMALL_BOX[1] * step)), top / (SMALL_BOX[1] * step)) * SMALL_BOX[1] * step:
            y = float(y_of(v)) * OVERSAMPLE
            draw.line([(scaled[0], y), (scaled[2], y)], fill=GRID[level], width=OVERSAMPLE)
    inside = (samples >= lo) & (samples < hi)
    for s, name in zip(samples[inside], names[inside]):
        x = float(x_of(s / fs)) * OVERSAMPLE
        draw.line([(x, scaled[1]), (x, scaled[3])], fill=_faint(CLASS_COLOURS.get(name, CLASS_COLOURS[UNCERTAIN])), width=OVERSAMPLE)
    t = np.arange(lo, hi) / fs
    points = np.stack([x_of(t), y_of(np.nan_to_num(trace, nan=bottom))], 1) * OVERSAMPLE
    draw.line([tuple(p) for p in points.tolist()], fill="black", width=int(1.2 * OVERSAMPLE), joint="curve")
    draw.rectangle(scaled, outline=GRID["frame"], width=OVERSAMPLE)
    image = big.reduce(OVERSAMPLE)  # each pixel the mean of the 2 x 2 drawn: anti-aliased
    _label(ImageDraw.Draw(image), box, x_of, samples[inside], names[inside], probabilities[inside], lo, hi, fs, lead, title)
    return image


def _faint(colour: str) -> tuple[int, int, int]:
    """``colour`` (hex) blended a third of the way from white, for the beat marks behind the trace."""
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return tuple(int(v) for v in np.rint(255 - (255 - rgb) * 0.4))


def _label(draw: ImageDraw.ImageDraw, box: tuple, x_of, samples: np.ndarray, names: np.ndarray, probabilities: np.ndarray,
           lo: int, hi: int, fs: float, lead: str, title: str) -> None:
    """Title, the beat labels above the strip, the lead name and the time axis (whole seconds)."""
    font, small = ImageFont.load_default(size=12), ImageFont.load_default(size=10)
    draw.text(((box[0] + box[2]) / 2, 6), title, fill="black", font=font, anchor="ma")
    for s, name, p in zip(samples, names, probabilities):
        x = float(x_of(s / fs))
        colour = CLASS_COLOURS.get(name, CLASS_COLOURS[UNCERTAIN])
        draw.text((x, box[1] - 16), str(name), fill=colour, font=small, anchor="md")
        draw.text((x, box[1] - 3), f"{p:.2f}", fill=colour, font=small, anchor="md")
    draw.text((12, (box[1] + box[3]) / 2), lead, fill="black", font=font, anchor="lm")
    for second in range(int(np.ceil(lo / fs)), int(hi / fs) + 1):
        x = float(x_of(second))
        draw.line([(x, box[3]), (x, box[3] + 4)], fill=GRID["frame"])
        draw.text((x, box[3] + 6), str(second), fill="black", font=small, anchor="ma")
    draw.text(((box[0] + box[2]) / 2, box[3] + 22), "time (s)   grid: 0.2 s x 0.5 mV", fill="black", font=small, anchor="ma")


def save_strip(image: Image.Image, target: str | IO[bytes]) -> None:
    """Write the strip as PNG."""
    image.save(target, format="PNG", dpi=(DPI, DPI), compress_level=3)  # a tenth larger than level 6, a third of its time
