"""What pirates do to a film, as frame transforms, for the benchmark and the tests.

Each transform is a function ``(rgb_frame, t) -> rgb_frame`` plus, for timing changes,
keyword arguments for ``synth.make_copy`` (speed, frame rate, bit rate, intro). A
``Transform`` bundles both so the accuracy run can combine them freely.

Layouts (picture-in-picture, a reaction video, a player window) are not one fixed
picture: ``Transform.make`` builds the frame function for a ``Case``, and every choice
(where the film sits, how large, over what, with which logo, colours and text) is drawn
from a generator seeded by the case's name, so each query is its own layout and the
same name always gives the same one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from demoweb import synth

Img = NDArray[np.uint8]
FrameFn = Callable[[Img, float], Img]


def seed_of(name: str) -> int:
    """A seed from a name: the same name, the same random choices, on any machine."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:12], 16)


@dataclass(frozen=True)
class Case:
    """One copy to make. ``key`` (e.g. ``"film.mp4/pip_30"``) seeds the layout;
    ``variant`` picks among a transform's enumerated variants (e.g. the position of a
    picture-in-picture); ``backgrounds`` and ``people`` are unrelated videos a layout may
    show beside the film (it makes its own when there are none)."""

    key: str
    variant: int = 0
    backgrounds: tuple[str, ...] = ()
    people: tuple[str, ...] = ()

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(seed_of(self.key))


def _chain(f1: FrameFn | None, f2: FrameFn | None) -> FrameFn | None:
    if not (f1 and f2):
        return f1 or f2

    def both(img: Img, t: float) -> Img:
        return f2(f1(img, t), t)
    return both


@dataclass(frozen=True)
class Transform:
    """A pirate transform. ``frame`` is the same for every copy; ``make`` (layouts)
    builds one per ``Case``. ``variants`` is how many enumerated variants ``make`` has
    (the benchmark makes at least that many copies, so each is exercised); ``group``
    names the family a target applies to (e.g. "picture_in_picture")."""

    name: str
    frame: FrameFn | None = None
    copy_kwargs: dict[str, Any] = field(default_factory=dict)
    make: Callable[[Case], FrameFn | None] | None = None
    variants: int = 1
    group: str = ""

    def for_case(self, case: Case) -> FrameFn | None:
        return self.make(case) if self.make else self.frame

    def __add__(self, other: Transform) -> Transform:
        name = f"{self.name}+{other.name}"
        kwargs = {**self.copy_kwargs, **other.copy_kwargs}
        common = {"variants": max(self.variants, other.variants), "group": self.group or other.group}
        if self.make or other.make:
            return Transform(name, None, kwargs, make=lambda case: _chain(self.for_case(case), other.for_case(case)),
                             **common)
        return Transform(name, _chain(self.frame, other.frame), kwargs, **common)


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


# ----------------------------------------------------------------------------- layouts
#
# The film shown inside another picture. Every choice is drawn from the case's seed.

POSITIONS = ("top_left", "top_right", "bottom_left", "bottom_right", "centre")
CHANNELS = ("TV NOVA", "K-PLAY 24", "CANAL 9", "STREAMZ", "LIVE ONE", "RADIO-TELE", "MOVIEZONE", "HD+")


def canvas_for(width: int, height: int) -> tuple[int, int]:
    """The frame a layout is drawn on: an upload of 720p, or 480p for a smaller film."""
    return (1280, 720) if width >= 1280 or height >= 720 else (854, 480)


def _even_px(n: float) -> int:
    """A pixel count rounded down to even (the encoder's 4:2:0 needs it)."""
    return max(2, int(n) - int(n) % 2)


def _fit(img: Img, w: int, max_h: int) -> Img:
    """``img`` scaled to width ``w`` (aspect kept), or to height ``max_h`` if taller."""
    H, W = img.shape[:2]
    h = _even_px(w * H / W)
    if h > max_h:
        h = _even_px(max_h)
        w = _even_px(h * W / H)
    return cv2.resize(img, (_even_px(w), h), interpolation=cv2.INTER_AREA)


def _cover(img: Img, w: int, h: int) -> Img:
    """``img`` scaled to cover a ``w`` x ``h`` panel, the overflow cut off evenly."""
    H, W = img.shape[:2]
    k = max(w / W, h / H)
    big = cv2.resize(img, (max(w, int(np.ceil(W * k))), max(h, int(np.ceil(H * k)))), interpolation=cv2.INTER_AREA)
    y, x = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[y : y + h, x : x + w]


def backdrop(case: Case, rng: np.random.Generator) -> synth.Footage:
    """Moving pictures behind the film: an unrelated video of the case, or a synthetic film."""
    if case.backgrounds and rng.random() < 0.5:
        return synth.Footage.of_file(case.backgrounds[int(rng.integers(len(case.backgrounds)))])
    return synth.Footage.synthetic(int(rng.integers(2**31)))


def _person(case: Case, rng: np.random.Generator) -> synth.Footage:
    if case.people and rng.random() < 0.5:
        return synth.Footage.of_file(case.people[int(rng.integers(len(case.people)))])
    return synth.Footage.person(int(rng.integers(2**31)))


def _channel_overlay(rng: np.random.Generator) -> Callable[[Img, float], None]:
    """A channel's logo in a corner, and sometimes a news ticker scrolling at the bottom."""
    name = str(rng.choice(CHANNELS))
    corner = int(rng.integers(4))
    alpha = float(rng.uniform(0.5, 0.95))
    fg = tuple(int(c) for c in rng.integers(150, 256, 3))
    bg = tuple(int(c) for c in rng.integers(0, 120, 3))
    ticker = rng.random() < 0.4
    words = " +++ ".join(str(w).upper() for w in rng.choice(synth.WORDS, 8))

    def draw(out: Img, t: float) -> None:
        H, W = out.shape[:2]
        scale = H / 700
        (tw, th), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_DUPLEX, scale, 2)
        pad = int(H * 0.015)
        x = pad * 2 if corner in (0, 2) else W - tw - 4 * pad
        y = pad * 2 if corner in (0, 1) else H - th - 4 * pad - (int(H * 0.06) if ticker else 0)
        layer = out.copy()
        cv2.rectangle(layer, (x, y), (x + tw + 2 * pad, y + th + 2 * pad), bg, -1)
        cv2.putText(layer, name, (x + pad, y + th + pad), cv2.FONT_HERSHEY_DUPLEX, scale, fg, 2, cv2.LINE_AA)
        if ticker:
            band = int(H * 0.06)
            cv2.rectangle(layer, (0, H - band), (W, H), bg, -1)
            shift = int((t * W * 0.15) % (W * 2))
            cv2.putText(layer, words, (W - shift, H - band // 3), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.9, fg, 2,
                        cv2.LINE_AA)
        cv2.addWeighted(layer, alpha, out, 1 - alpha, 0, dst=out)

    return draw


def pip(scale: float, busy: bool = False) -> Callable[[Case], FrameFn]:
    """The film at ``scale`` (+-1.5 %) of the frame's width, over moving footage, at
    the case's position (``POSITIONS[variant]``), with margins, an optional border and
    an optional channel overlay. ``busy``: always over an unrelated video of the case
    (city lights, a game trailer, ...: tones and motion like a film's), never with a
    border, at ``scale`` -2 to +3 %: the inset's border is then hard to see."""
    def make(case: Case) -> FrameFn:
        rng = case.rng()
        where = POSITIONS[case.variant % len(POSITIONS)]
        share = scale + (float(rng.uniform(-0.02, 0.03)) if busy else float(rng.uniform(-0.015, 0.015)))
        mx, my = (float(v) for v in rng.uniform(0.02, 0.07, 2))
        jx, jy = (float(v) for v in rng.uniform(-0.04, 0.04, 2))
        bg = (synth.Footage.of_file(case.backgrounds[int(rng.integers(len(case.backgrounds)))])
              if busy and case.backgrounds else backdrop(case, rng))
        border = 0 if busy else int(rng.choice([0, 0, 2, 4]))
        border_colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        overlay = _channel_overlay(rng) if rng.random() < 0.8 else None

        def f(img: Img, t: float) -> Img:
            H, W = img.shape[:2]
            cw, ch = canvas_for(W, H)
            out = bg.at(t, (cw, ch)).copy()
            film = _fit(img, _even_px(share * cw), int(ch * 0.92))
            h, w = film.shape[:2]
            x = {"left": int(mx * cw), "right": cw - w - int(mx * cw)}
            y = {"top": int(my * ch), "bottom": ch - h - int(my * ch)}
            if where == "centre":
                x0, y0 = int((cw - w) / 2 + jx * cw), int((ch - h) / 2 + jy * ch)
            else:
                vert, horiz = where.split("_")
                x0, y0 = x[horiz], y[vert]
            x0, y0 = int(np.clip(x0, 0, cw - w)), int(np.clip(y0, 0, ch - h))
            out[y0 : y0 + h, x0 : x0 + w] = film
            if border:
                cv2.rectangle(out, (x0 - border, y0 - border), (x0 + w + border - 1, y0 + h + border - 1),
                              border_colour, border)
            if overlay:
                overlay(out, t)
            return out
        return f
    return make


def reaction(case: Case) -> FrameFn:
    """A reaction video: the film on one side, a person watching it on the other (a
    corpus clip or a synthetic face), a plain or coloured backdrop, sometimes a caption."""
    rng = case.rng()
    film_left = bool(rng.random() < 0.5)
    share = float(rng.uniform(0.5, 0.62))
    gap = float(rng.uniform(0.0, 0.03))
    top = float(rng.uniform(0.0, 1.0))     # where the film sits vertically in its free space
    person = _person(case, rng)
    colour = np.array(rng.integers(0, 80, 3), np.uint8)
    caption = f"{rng.choice(['REACTING TO', 'FIRST TIME WATCHING', 'MY REACTION:'])} {str(rng.choice(synth.WORDS)).upper()}"
    with_caption = rng.random() < 0.6
    overlay = _channel_overlay(rng) if rng.random() < 0.3 else None

    def f(img: Img, t: float) -> Img:
        H, W = img.shape[:2]
        cw, ch = canvas_for(W, H)
        out = np.empty((ch, cw, 3), np.uint8)
        out[:] = colour
        film = _fit(img, _even_px(share * cw), ch)
        h, w = film.shape[:2]
        pw = cw - w - int(gap * cw)
        fx = 0 if film_left else cw - w
        px = cw - pw if film_left else 0
        fy = int((ch - h) * top)
        out[fy : fy + h, fx : fx + w] = film
        out[:, px : px + pw] = _cover(person.at(t), pw, ch)
        if with_caption:
            cv2.putText(out, caption, (px + int(pw * 0.05), int(ch * 0.93)), cv2.FONT_HERSHEY_SIMPLEX,
                        ch / 900, (255, 255, 255), 2, cv2.LINE_AA)
        if overlay:
            overlay(out, t)
        return out
    return f


def app_window(case: Case) -> FrameFn:
    """A screen recording of the film in a player or browser window: a desktop, the
    window with its title bar, a toolbar with an address, the video (70-85 % of the
    frame's width) with its controls and a progress bar that moves, a list of other
    videos beside it, a scroll bar, and a mouse pointer."""
    rng = case.rng()
    dark = bool(rng.random() < 0.5)
    ui = np.array((32, 32, 36) if dark else (245, 245, 245), np.uint8)
    ink = (230, 230, 230) if dark else (30, 30, 30)
    muted = (120, 120, 125) if dark else (170, 170, 175)
    accent = tuple(int(c) for c in rng.integers(60, 256, 3))
    share = float(rng.uniform(0.70, 0.85))
    wall_a, wall_b = rng.integers(0, 256, 3).astype(np.float32), rng.integers(0, 256, 3).astype(np.float32)
    margin = float(rng.uniform(0.0, 0.03))
    title_h, tool_h = float(rng.uniform(0.03, 0.045)), float(rng.uniform(0.04, 0.06))
    site = f"{rng.choice(synth.WORDS)}{rng.choice(['tube', 'flix', 'stream', 'vid'])}.example"
    url = f"https://{site}/watch?v={seed_of(case.key) % 10**10:010d}"
    title = " ".join(str(w).title() for w in rng.choice(synth.WORDS, 4))
    thumbs = [tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(6)]
    total = int(rng.integers(3600, 8400))
    scroll = float(rng.uniform(0.0, 0.6))
    cursor = rng.uniform(0.2, 0.8, 2)
    font = cv2.FONT_HERSHEY_SIMPLEX

    def f(img: Img, t: float) -> Img:
        H, W = img.shape[:2]
        cw, ch = canvas_for(W, H)
        ramp = np.linspace(0, 1, ch, dtype=np.float32)[:, None, None]
        out = np.ascontiguousarray(np.broadcast_to(wall_a * (1 - ramp) + wall_b * ramp, (ch, cw, 3)), np.uint8)
        wx0, wy0 = int(margin * cw), int(margin * ch)
        wx1, wy1 = cw - wx0, ch - wy0
        out[wy0:wy1, wx0:wx1] = ui
        # Title bar: the window's buttons and the page title.
        tb = int(title_h * ch)
        cv2.rectangle(out, (wx0, wy0), (wx1, wy0 + tb), muted, -1)
        for k, c in enumerate(((255, 95, 86), (255, 189, 46), (39, 201, 63))):
            cv2.circle(out, (wx0 + tb // 2 + k * tb, wy0 + tb // 2), max(3, tb // 4), c, -1, cv2.LINE_AA)
        cv2.putText(out, f"{title} - {site}", (wx0 + 4 * tb, wy0 + int(tb * 0.7)), font, ch / 1500, ink, 1,
                    cv2.LINE_AA)
        # Toolbar: back / forward / reload, and the address.
        ty0, ty1 = wy0 + tb, wy0 + tb + int(tool_h * ch)
        cv2.rectangle(out, (wx0 + int(0.12 * cw), ty0 + 4), (wx1 - int(0.05 * cw), ty1 - 4), muted, 1)
        cv2.putText(out, url, (wx0 + int(0.13 * cw), ty1 - int((ty1 - ty0) * 0.3)), font, ch / 1400, ink, 1,
                    cv2.LINE_AA)
        for k, sym in enumerate(("<", ">", "C")):
            cv2.putText(out, sym, (wx0 + int((0.02 + 0.03 * k) * cw), ty1 - int((ty1 - ty0) * 0.3)), font,
                        ch / 1000, ink, 1, cv2.LINE_AA)
        # The video, its controls over its lower edge.
        vx0, vy0 = wx0 + int(0.01 * cw), ty1 + int(0.015 * ch)
        film = _fit(img, _even_px(share * cw), wy1 - vy0 - int(0.08 * ch))
        h, w = film.shape[:2]
        out[vy0 : vy0 + h, vx0 : vx0 + w] = film
        bar = max(8, int(0.05 * h))
        layer = out.copy()
        cv2.rectangle(layer, (vx0, vy0 + h - bar), (vx0 + w, vy0 + h), (0, 0, 0), -1)
        cv2.addWeighted(layer, 0.5, out, 0.5, 0, dst=out)
        done = (600 + t) / total
        cv2.line(out, (vx0 + 4, vy0 + h - bar), (vx0 + w - 4, vy0 + h - bar), (120, 120, 120), 2)
        cv2.line(out, (vx0 + 4, vy0 + h - bar), (vx0 + 4 + int((w - 8) * done), vy0 + h - bar), accent, 2)
        tri = np.array([[vx0 + 8, vy0 + h - bar + 3], [vx0 + 8, vy0 + h - 3], [vx0 + 8 + bar // 2, vy0 + h - bar // 2]])
        cv2.fillPoly(out, [tri], (255, 255, 255))
        clock = f"{int(600 + t) // 60}:{int(600 + t) % 60:02d} / {total // 60}:{total % 60:02d}"
        cv2.putText(out, clock, (vx0 + bar * 2, vy0 + h - bar // 4), font, bar / 40, (255, 255, 255), 1, cv2.LINE_AA)
        # Below it the title; beside it the next videos.
        cv2.putText(out, title, (vx0, min(wy1 - 6, vy0 + h + int(0.04 * ch))), font, ch / 900, ink, 2, cv2.LINE_AA)
        sx0 = vx0 + w + int(0.01 * cw)
        th = max(10, int(0.1 * ch))
        for k, c in enumerate(thumbs):
            y = vy0 + k * int(th * 1.2)
            if y + th > wy1 or sx0 + 10 > wx1 - 20:
                break
            cv2.rectangle(out, (sx0, y), (min(wx1 - 20, sx0 + int(th * 1.6)), y + th), c, -1)
        # Scroll bar at the window's right edge.
        cv2.rectangle(out, (wx1 - 14, ty1), (wx1 - 2, wy1 - 2), muted, -1)
        sy = ty1 + int(scroll * (wy1 - ty1) * 0.7)
        cv2.rectangle(out, (wx1 - 12, sy), (wx1 - 4, sy + int((wy1 - ty1) * 0.3)), ink, -1)
        # The pointer drifts across the screen.
        px = int((cursor[0] + 0.1 * np.sin(t * 0.7)) * cw)
        py = int((cursor[1] + 0.1 * np.cos(t * 0.5)) * ch)
        arrow = np.array([[px, py], [px, py + 18], [px + 5, py + 13], [px + 12, py + 13]])
        cv2.fillPoly(out, [arrow], (255, 255, 255))
        cv2.polylines(out, [arrow], True, (0, 0, 0), 1)
        return out
    return f


VERTICAL_BARS = ("black", "blurred", "banner")


def vertical_repost(case: Case) -> FrameFn:
    """The film re-posted as a vertical video (9:16, as short-video platforms show it):
    across the frame's width, a third of its height, between black bars or the film
    itself blown up and blurred (``VERTICAL_BARS[variant]``), sometimes with a caption
    in the bar above and the film a little off centre; or under a white banner with a
    caption in black across the frame (a meme's layout), the bars blurred or black."""
    rng = case.rng()
    bars = VERTICAL_BARS[case.variant % len(VERTICAL_BARS)]
    blurred = bars == "blurred" or (bars == "banner" and rng.random() < 0.5)
    shift = float(rng.uniform(-0.08, 0.08))
    caption = str(rng.choice(["wait for it...", "best scene ever", "part 2", "no way"]))
    with_caption = rng.random() < 0.7

    def f(img: Img, t: float) -> Img:
        cw, ch = 406, 720
        film = _fit(img, cw, ch)
        h, w = film.shape[:2]
        if blurred:
            out = (cv2.GaussianBlur(_cover(img, cw, ch), (0, 0), 20) * 0.7).astype(np.uint8)
        else:
            out = np.zeros((ch, cw, 3), np.uint8)
        y0 = int(np.clip((ch - h) / 2 + shift * ch, 0, ch - h))
        x0 = (cw - w) // 2
        out[y0 : y0 + h, x0 : x0 + w] = film
        if bars == "banner" and y0 > 100:
            cv2.rectangle(out, (0, y0 - 90), (cw, y0 - 10), (255, 255, 255), -1)
            cv2.putText(out, caption.upper(), (15, y0 - 35), cv2.FONT_HERSHEY_DUPLEX, 1.2, (0, 0, 0), 3, cv2.LINE_AA)
        elif with_caption and y0 > 60:
            cv2.putText(out, caption, (20, y0 - 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
        return out
    return f


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
    Transform("picture_in_picture", picture_in_picture(0.6), group="picture_in_picture"),
    Transform("camcorder", camcorder),
    Transform("intro_outro", None, {"intro": "intro", "outro": "intro"}),
    # Issue 12's layouts: every position of each scale is exercised (variants).
    *(Transform(f"pip_{int(s * 100)}", make=pip(s), variants=len(POSITIONS), group="picture_in_picture")
      for s in (0.30, 0.45, 0.60)),
    # Insets no edge gives away (stress sets of issue 12): no border, over corpus footage.
    Transform("pip_busy_30", make=pip(0.30, busy=True), variants=len(POSITIONS), group="picture_in_picture"),
    Transform("vertical_repost", make=vertical_repost, variants=len(VERTICAL_BARS)),
    Transform("reaction", make=reaction, group="picture_in_picture"),
    Transform("app_window", make=app_window, group="picture_in_picture"),
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
