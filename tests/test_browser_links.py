"""In a real headless Chromium against a real server: a share link opened shows the image gan.sample gives for its
settings, and "Copy link" gives a link that does the same; an Interpolate link opens that tab with its animation;
a hostile link is answered with a note; translation and projection show input and output in an image slider
(on a phone too); the latent downloaded from the page and uploaded back draws the same image.

The page's images are compared with eager fp32 computed here within the bounded promise of docs/testing.md
(mean 0.5, max 4 levels of 255): the server serves whichever path it chose. Uses the app and browser fixture of
test_browser.py (a server and a browser of its own for this module). ``python tests/test_browser_links.py
--screenshot`` writes docs/screenshots/links.png (the README shows it).
"""
from __future__ import annotations

import io
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from PIL import Image
from test_browser import ROOT, TIMEOUT_MS, _open_tab, _src, page  # noqa: F401 - page: the fixture

import gan
from forger_app import display, links

DIGITS = "mnist-dcgan"
SETTINGS = dict(model=DIGITS, seed=3, digit=7, truncation=0.8, sliders=[0, 0.5, -1.25])
PHONE = {"width": 390, "height": 844}


def _expected() -> np.ndarray:
    s = SETTINGS
    edits = [*s["sliders"], *[0.0] * 7]
    img = gan.sample(s["model"], seed=s["seed"], truncation=s["truncation"], label=s["digit"], edits=edits,
                     precision="fp32")[0]
    return np.asarray(img, dtype=np.int16)


def _fetched(page, url: str, side: int | None = None) -> np.ndarray:
    img = Image.open(io.BytesIO(page.request.get(url).body()))
    if side is not None:
        img = display.shrink_enlarged(img, side)
    return np.asarray(img, dtype=np.int16)


def _within_bound(shown: np.ndarray, expected: np.ndarray) -> bool:
    if shown.shape != expected.shape:
        return False
    diff = np.abs(shown - expected)
    return diff.mean() <= 0.5 and diff.max() <= 4


def _wait_for_image(page, selector: str, expected: np.ndarray, side: int | None, timeout_s: float = 120) -> None:
    """Until the image shown is ``expected`` (within the bound): the page first shows its own first sample."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        src = _src(page, selector) if page.locator(selector).count() else ""
        if src and src != last:
            last = src
            if _within_bound(_fetched(page, src, side), expected):
                return
        page.wait_for_timeout(300)
    raise AssertionError(f"{selector} never showed the link's image")


def _base(page) -> str:
    return page.url.split("?")[0]


def _new_page(page, viewport: dict | None = None):
    """Another page of the module's browser, on the same server."""
    pg = page.context.browser.new_page(viewport=viewport or {"width": 1280, "height": 1000})
    pg.set_default_timeout(TIMEOUT_MS)
    return pg


def _link_in(page, elem_id: str) -> str:
    page.locator(f"#{elem_id}-btn").click()
    box = page.locator(f"#{elem_id} textarea, #{elem_id} input").first
    deadline = time.monotonic() + 30
    while not box.input_value() and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    return box.input_value()


def test_a_share_link_shows_the_image_gan_sample_gives_and_copy_link_gives_it_again(page, tmp_path):
    pg = _new_page(page)
    s = SETTINGS
    pg.goto(_base(page) + links.query("sample", **s))
    expected = _expected()
    _wait_for_image(pg, "#sample-image img", expected, 28)
    assert pg.locator("#sample-model input").input_value() == DIGITS
    assert pg.locator("#sample-digit input").input_value() == "7"
    assert pg.locator("#latent-1 input[type=number]").input_value() == "0.5"
    assert pg.locator("#latent-2 input[type=number]").input_value() == "-1.25"
    assert "From the link" not in pg.locator("#sample-status").inner_text()

    # "Copy link": the page's own address with what is on screen
    url = _link_in(pg, "sample-link")
    assert url.startswith(_base(page) + "?")
    link = links.parse(dict(parse_qsl(urlsplit(url).query)))
    assert (link.tab, link.model, link.seed, link.digit, link.truncation) == ("sample", DIGITS, 3, 7, 0.8)
    assert link.sliders[:3] == [0, 0.5, -1.25] and not any(link.sliders[3:]) and not link.notes
    again = _new_page(page)
    again.goto(url)
    _wait_for_image(again, "#sample-image img", expected, 28)
    again.close()

    # the latent downloaded from the page and uploaded back: the same image
    pg.get_by_text("Keep this latent").click()
    pg.locator("#latent-download").click()
    files = pg.locator("#latent-files a[download]")
    deadline = time.monotonic() + 60
    while files.count() < 2 and time.monotonic() < deadline:
        pg.wait_for_timeout(200)
    saved = []
    for i in range(files.count()):
        href = files.nth(i).get_attribute("href")
        saved.append(tmp_path / Path(urlsplit(href).path).name)  # the name the download gets
        saved[-1].write_bytes(pg.request.get(href).body())
    assert sorted(p.suffix for p in saved) == [".json", ".npy"]
    pg.locator("#latent-upload input[type=file]").set_input_files([str(p) for p in saved])
    status = pg.locator("#sample-status")
    deadline = time.monotonic() + 120
    while "your latent" not in status.inner_text() and time.monotonic() < deadline:
        pg.wait_for_timeout(200)
    assert "your latent" in status.inner_text()
    _wait_for_image(pg, "#sample-image img", expected, 28)
    pg.close()


def test_an_interpolate_link_opens_that_tab_with_its_animation(page):
    pg = _new_page(page)
    values = dict(model=DIGITS, seed_a=4, seed_b=9, digit_a=3, digit_b=8, frames=5, mode="lerp")
    pg.goto(_base(page) + links.query("interpolate", **values))
    frames = gan.interpolate(DIGITS, 4, 9, steps=5, mode="lerp", label_a=3, label_b=8, precision="fp32")
    expected = display.enlarge(display.make_grid(frames, columns=5), 128 * 5)
    _wait_for_image(pg, "#interp-strip img", np.asarray(expected, dtype=np.int16), None)
    assert pg.get_by_role("tab", name="Interpolate", exact=True).get_attribute("aria-selected") == "true"
    link = links.parse(dict(parse_qsl(urlsplit(_link_in(pg, "interp-link")).query)))
    assert (link.tab, link.model, link.seed_a, link.seed_b, link.digit_a, link.digit_b, link.frames, link.mode) == (
        "interpolate", DIGITS, 4, 9, 3, 8, 5, "lerp") and not link.notes
    pg.close()


def test_a_hostile_link_gets_a_plain_note_and_runs_nothing(page):
    pg = _new_page(page)
    dialogs = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.goto(_base(page) + "?tab=sample&model=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&seed=-5&sliders=nan,1e309"
            "&truncation=Infinity&digit=" + "9" * 1000)
    status = pg.locator("#sample-status")
    deadline = time.monotonic() + 120
    while "From the link" not in status.inner_text() and time.monotonic() < deadline:
        pg.wait_for_timeout(200)
    text = status.inner_text()
    for key in ("model", "seed", "sliders", "truncation", "digit"):
        assert key in text, text
    assert "ignored" in text and "onerror" not in text and "Traceback" not in text and not dialogs
    assert pg.locator("#sample-image img").count() == 1  # the page's own first sample stays
    pg.close()


def test_translation_and_projection_show_input_and_output_in_an_image_slider_on_a_phone_too(page):
    for viewport in ({"width": 1280, "height": 1000}, PHONE):
        pg = _new_page(page, viewport)
        pg.goto(_base(page))
        pg.locator("#sample-image img").wait_for()
        _open_tab(pg, "Translate")
        pg.locator("#translate-in input[type=file]").set_input_files(str(ROOT / "docs" / "examples" / "sketch_2.png"))
        _two_images(pg, "#translate-out", viewport)
        _open_tab(pg, "Sample")
        pg.locator("#project-in input[type=file]").set_input_files(str(ROOT / "docs" / "examples" / "mnist_3.png"))
        pg.locator("#project-in img").wait_for()
        pg.locator("#project-btn").click()
        _two_images(pg, "#project-pair", viewport)
        pg.close()


def _two_images(pg, selector: str, viewport: dict) -> None:
    """Both images of the slider are shown, of the same size, different, and the slider fits the screen."""
    images = pg.locator(f"{selector} img")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while (images.count() < 2 or not all(images.nth(i).get_attribute("src") for i in range(2))) and \
            time.monotonic() < deadline:
        pg.wait_for_timeout(200)
    assert images.count() == 2
    loaded = "e => e.complete && e.naturalWidth > 0 && e.getBoundingClientRect().height > 0"
    while not all(images.nth(i).evaluate(loaded) for i in range(2)) and time.monotonic() < deadline:
        pg.wait_for_timeout(200)
    before, after = (_fetched(pg, images.nth(i).get_attribute("src")) for i in range(2))
    assert before.shape[:2] == after.shape[:2] and (before != after).any()
    box = pg.locator(selector).bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 1, (selector, box)
    for i in range(2):  # each image whole inside the slider's box (not cut at its top or bottom), and large
        shown = images.nth(i).bounding_box()
        assert shown["y"] >= box["y"] - 1 and shown["y"] + shown["height"] <= box["y"] + box["height"] + 1, (box, shown)
        assert shown["x"] >= box["x"] - 1 and shown["x"] + shown["width"] <= box["x"] + box["width"] + 1, (box, shown)
        assert shown["height"] > 0.6 * box["height"], (box, shown)


# ---------------------------------------------------------------------------- screenshot


def take_screenshot(out: Path = ROOT / "docs" / "screenshots" / "links.png") -> Path:
    """The Translate tab's image slider, half dragged, beside a share link's Sample tab."""
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM_ARGS, chromium_path, launch_app

    import app

    url = launch_app()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
            pg = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
            pg.set_default_timeout(TIMEOUT_MS)
            pg.goto(url + links.query("sample", **SETTINGS).lstrip("/"))
            _wait_for_image(pg, "#sample-image img", _expected(), 28)
            _link_in(pg, "sample-link")
            _open_tab(pg, "Translate")
            pg.locator("#translate-in input[type=file]").set_input_files(
                str(ROOT / "docs" / "examples" / "sketch_2.png"))
            _two_images(pg, "#translate-out", {"width": 1280})
            pg.wait_for_timeout(500)
            out.parent.mkdir(parents=True, exist_ok=True)
            pg.locator("#translate-out").screenshot(path=str(out))
            browser.close()
    finally:
        app.demo.close()
    return out


if __name__ == "__main__":
    if "--screenshot" in sys.argv:
        print(take_screenshot())
