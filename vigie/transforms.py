"""What pirates do to a film, as frame transforms, for the benchmark and the tests.

Each transform is a function ``(rgb_frame, t) -> rgb_frame`` plus, for timing changes,
keyword arguments for ``synth.make_copy`` (speed, frame rate, bit rate, intro). A
``Transform`` bundles both so the accuracy run can combine them freely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from vigie import synth

Img = NDArray[np.uint8]


@dataclass(frozen=True)
class Transform:
    name: str
    frame: Callable[[Img, float], Img] | None = None
    copy_kwargs: dict[str, Any] = field(default_factory=dict)

    def __add__(self, other: Transform) -> Transform:
        f1, f2 = self.frame, other.frame

        def both(img: Img, t: float) -> Img:
            if f1:
                img = f1(img, t)
            return f2(img, t) if f2 else img

        return Transform(f"{self.name}+{other.name}", both if (f1 or f2) else None,
                         {**self.copy_kwargs, **other.copy_kwargs})


def _even(img: Img) -> Img:
    h, w = img.shape[:2]
    return img[: h - h % 2, : w - w % 2]


def scale_to_height(h: int) -> Callable[[Img, float], Img]:
    def f(img: Img, _t: float) -> Img:
        H, W = img.shape[:2]
        w = int(round(W * h / H / 2)) * 2
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if h < H else cv2.INTER_CUBIC)
    return f


def crop(top: float, bottom: float, left: float, right: float) -> Callable[[Img, float], Img]:
    def f(img: Img, _t: float) -> Img:
        H, W = img.shape[:2]
        return _even(img[int(H * top) : H - int(H * bottom), int(W * left) : W - int(W * right)])
    return f


def bars(vertical: bool, share: float = 0.25, blurred: bool = False) -> Callable[[Img, float], Img]:
    """Letterbox (bars above and below) or pillarbox (left and right), black or blurred."""
    def f(img: Img, _t: float) -> Img:
        H, W = img.shape[:2]
        if vertical:  # letterbox: picture squeezed into a taller frame
            outH = int(H / (1 - share))
            pad = (outH - H) // 2
            if blurred:
                bg = cv2.GaussianBlur(cv2.resize(img, (W, outH)), (0, 0), 15)
            else:
                bg = np.zeros((outH, W, 3), np.uint8)
            bg[pad : pad + H] = img
        else:
            outW = int(W / (1 - share))
            pad = (outW - W) // 2
            if blurred:
                bg = cv2.GaussianBlur(cv2.resize(img, (outW, H)), (0, 0), 15)
            else:
                bg = np.zeros((H, outW, 3), np.uint8)
            bg[:, pad : pad + W] = img
        return _even(bg)
    return f


def logo(img: Img, _t: float) -> Img:
    out = img.copy()
    H, W = out.shape[:2]
    x0, y0 = int(W * 0.78), int(H * 0.05)
    cv2.rectangle(out, (x0, y0), (x0 + int(W * 0.18), y0 + int(H * 0.1)), (255, 255, 255), -1)
    cv2.putText(out, "PIRATE", (x0 + 4, y0 + int(H * 0.08)), cv2.FONT_HERSHEY_SIMPLEX, H / 600, (200, 0, 0), 2)
    return out


def watermark(img: Img, _t: float) -> Img:
    out = img.copy()
    H, W = out.shape[:2]
    layer = out.copy()
    cv2.putText(layer, "FREEMOVIES.example", (int(W * 0.1), int(H * 0.55)), cv2.FONT_HERSHEY_SIMPLEX,
                H / 300, (255, 255, 255), max(2, H // 150))
    return cv2.addWeighted(layer, 0.35, out, 0.65, 0)


def subtitles(img: Img, t: float) -> Img:
    out = img.copy()
    H, W = out.shape[:2]
    lines = ["Ou est le lapin ?", "Je ne sais pas, mais il est grand.", "Vite, avant la nuit !"]
    text = lines[int(t / 3) % len(lines)]
    scale = H / 400
    cv2.putText(out, text, (int(W * 0.15), int(H * 0.9)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), max(3, H // 100))
    cv2.putText(out, text, (int(W * 0.15), int(H * 0.9)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, H // 250))
    return out


def levels(brightness: float = 0.0, contrast: float = 1.0, gamma: float = 1.0) -> Callable[[Img, float], Img]:
    lut = np.clip(((np.arange(256) / 255.0) ** gamma * 255 - 128) * contrast + 128 + brightness, 0, 255).astype(np.uint8)
    return lambda img, _t: cv2.LUT(img, lut)


def saturation(factor: float) -> Callable[[Img, float], Img]:
    def f(img: Img, _t: float) -> Img:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 1] = np.clip(hsv[..., 1] * factor, 0, 255)
        return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    return f


def hue(shift: int) -> Callable[[Img, float], Img]:
    def f(img: Img, _t: float) -> Img:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return f


def greyscale(img: Img, _t: float) -> Img:
    return cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def mirror(img: Img, _t: float) -> Img:
    return np.ascontiguousarray(img[:, ::-1])


def rotate(degrees: float) -> Callable[[Img, float], Img]:
    def f(img: Img, _t: float) -> Img:
        H, W = img.shape[:2]
        m = cv2.getRotationMatrix2D((W / 2, H / 2), degrees, 1.0)
        return cv2.warpAffine(img, m, (W, H), borderMode=cv2.BORDER_CONSTANT)
    return f


def noise(sigma: float) -> Callable[[Img, float], Img]:
    def f(img: Img, t: float) -> Img:
        rng = np.random.default_rng(int(t * 1000))
        return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)
    return f


def picture_in_picture(scale: float = 0.6, seed: int = 11) -> Callable[[Img, float], Img]:
    """The film at ``scale`` of the frame inside another (moving) video."""
    cache: dict[tuple[int, int], list[Img]] = {}

    def f(img: Img, t: float) -> Img:
        H, W = img.shape[:2]
        if (H, W) not in cache:
            cache[(H, W)] = [fr for _, fr in synth.film_frames(seed, 6.0, 5.0, (W, H))]
        bgs = cache[(H, W)]
        out = bgs[int(t * 5) % len(bgs)].copy()
        h, w = int(H * scale), int(W * scale)
        y, x = int(H * 0.08), int(W * 0.36)
        out[y : y + h, x : x + w] = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        return out
    return f


def camcorder(img: Img, t: float) -> Img:
    """A phone filming a cinema screen: perspective, blur, noise, vignette, dim colours."""
    H, W = img.shape[:2]
    src = np.float32([[0, 0], [W, 0], [W, H], [0, H]])
    dst = np.float32([[W * 0.06, H * 0.08], [W * 0.95, H * 0.03], [W * 0.97, H * 0.96], [W * 0.03, H * 0.90]])
    warped = cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (W, H))
    blurred = cv2.GaussianBlur(warped, (0, 0), max(1.0, H / 360))
    yy, xx = np.mgrid[0:H, 0:W]
    r = np.sqrt(((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2)
    vignette = np.clip(1.0 - 0.35 * r**2, 0.3, 1.0)[..., None]
    rng = np.random.default_rng(int(t * 1000))
    out = blurred * vignette * 0.9 + rng.normal(0, 6, img.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def _intro() -> list[Img]:
    return [f for _, f in synth.film_frames(seed=4242, duration_s=10, fps=25, size=(320, 180))]


TRANSFORMS: list[Transform] = [
    Transform("reencode_lowbitrate", None, {"bit_rate": 150_000}),
    Transform("downscale_240p", scale_to_height(240)),
    Transform("upscale_1080p", scale_to_height(1080)),
    Transform("crop_10", crop(0.10, 0.10, 0.10, 0.10)),
    Transform("crop_15_one_side", crop(0.0, 0.0, 0.15, 0.0)),
    Transform("letterbox", bars(True)),
    Transform("pillarbox", bars(False)),
    Transform("blurred_bars", bars(False, blurred=True)),
    Transform("logo", logo),
    Transform("watermark", watermark),
    Transform("subtitles", subtitles),
    Transform("brightness", levels(brightness=40)),
    Transform("contrast", levels(contrast=1.4)),
    Transform("gamma", levels(gamma=0.7)),
    Transform("saturation", saturation(1.6)),
    Transform("hue", hue(25)),
    Transform("greyscale", greyscale),
    Transform("mirror", mirror),
    Transform("speed_24_to_25", None, {"speed": 25 / 24, "fps": 25}),
    Transform("speed_25_to_24", None, {"speed": 24 / 25, "fps": 24}),
    Transform("fps_30", None, {"fps": 30}),
    Transform("rotate_3", rotate(3)),
    Transform("noise", noise(12)),
    Transform("picture_in_picture", picture_in_picture(0.6)),
    Transform("camcorder", camcorder),
    Transform("intro_outro", None, {"intro": "intro", "outro": "intro"}),
]

BY_NAME = {t.name: t for t in TRANSFORMS}
if len(BY_NAME) != len(TRANSFORMS):
    raise RuntimeError("transform names must be unique")

COMBINATIONS: list[Transform] = [
    BY_NAME["crop_10"] + BY_NAME["mirror"] + BY_NAME["reencode_lowbitrate"],
    BY_NAME["letterbox"] + BY_NAME["subtitles"] + BY_NAME["speed_24_to_25"],
    BY_NAME["downscale_240p"] + BY_NAME["logo"] + BY_NAME["brightness"],
    BY_NAME["greyscale"] + BY_NAME["noise"] + BY_NAME["intro_outro"],
    BY_NAME["camcorder"] + BY_NAME["reencode_lowbitrate"],
    BY_NAME["picture_in_picture"] + BY_NAME["speed_25_to_24"],
    BY_NAME["rotate_3"] + BY_NAME["contrast"] + BY_NAME["hue"],
]


def copy_kwargs(t: Transform) -> dict[str, Any]:
    kw = dict(t.copy_kwargs)
    for key in ("intro", "outro"):
        if kw.get(key) == "intro":
            kw[key] = _intro()
    return kw
