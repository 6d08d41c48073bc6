"""The web page in a real browser: Debian's Chromium driven by Playwright, headless."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from bench.server import running_server
from model.features import SAMPLE_RATE
from tests.audio import encode, music_like
from tests.helpers import ROOT, SHIPPED_LABELS, embedding_library, real_music

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def console_errors() -> list[str]:
    return []


@pytest.fixture(scope="module")
def page(server: tuple[str, subprocess.Popen[bytes]], console_errors: list[str]):  # type: ignore[no-untyped-def]
    assert Path(CHROMIUM).is_file(), "Debian's chromium is needed: apt-get install chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.goto(server[0] + "/")
        yield page
        browser.close()


def painted_pixels(page: Page) -> int:
    return int(
        page.evaluate(
            """() => {
              const c = document.getElementById('timeline');
              const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
              let n = 0;
              for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
              return n;
            }"""
        )
    )


def test_a_three_minute_track_tells_its_story(page: Page, tmp_path: Path, console_errors: list[str]) -> None:
    """A 3-minute track of real music: genre bars, a labelled genre-over-time lane, one merged attention strip
    over the waveform, plain words with the details on hover, and no console errors (favicon included)."""
    expect(page.locator("#labels")).to_have_text(f" (of 10: {', '.join(SHIPPED_LABELS)})")  # from the card
    clip = tmp_path / "song.mp3"
    music = np.concatenate(real_music(6))
    clip.write_bytes(encode(np.stack([music, 0.8 * music], axis=1), SAMPLE_RATE, "MP3", "MPEG_LAYER_III"))
    page.set_input_files("#file", str(clip))
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    expect(page.locator("#chart .bar")).to_have_count(len(SHIPPED_LABELS))
    expect(page.locator("#top-genre")).to_have_text(page.locator("#chart span").first.inner_text())
    expect(page.locator("#not-music")).to_be_hidden()
    expect(page.locator("#music")).to_contain_text("Music:")
    expect(page.locator("#timeline-card")).to_be_visible()

    stretches = page.locator("#genre-lane .stretch")
    assert stretches.count() >= 1
    widths = [float(s.evaluate("e => e.getBoundingClientRect().width")) for s in stretches.all()]
    lane_width = float(page.locator("#genre-lane").evaluate("e => e.getBoundingClientRect().width"))
    assert sum(widths) == pytest.approx(lane_width, abs=2)  # the stretches tile the whole track
    for stretch in stretches.all():
        assert stretch.inner_text() in SHIPPED_LABELS and "window" in (stretch.get_attribute("title") or "")
    assert painted_pixels(page) > 10_000

    meta = page.locator("#meta")
    assert "3:00 long" in meta.inner_text() and "overlapping parts of 30 s" in meta.inner_text()
    assert "window" not in meta.inner_text() and "ExecutionProvider" not in meta.inner_text()  # plain words
    assert "CPUExecutionProvider" in (meta.get_attribute("title") or "")  # the details, on hover
    assert console_errors == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-page-3min.png"), full_page=True)
    assert (ARTIFACTS / "web-page-3min.png").stat().st_size > 10_000


def test_not_music_is_said_plainly_and_drawn_over_time(page: Page, tmp_path: Path) -> None:
    """White noise: "this doesn't sound like music", no top genre, the genres greyed as hypothetical.
    Then music followed by a minute of hiss: music and not music on the lane."""
    noise = tmp_path / "noise.wav"
    noise.write_bytes(encode(0.2 * np.random.default_rng(0).standard_normal(10 * SAMPLE_RATE), SAMPLE_RATE))
    page.set_input_files("#file", str(noise))
    expect(page.locator("#status")).to_contain_text("Done", timeout=60_000)
    expect(page.locator("#not-music")).to_have_text("This doesn’t sound like music.")
    expect(page.locator("#not-music")).to_be_visible()
    expect(page.locator("#top-line")).to_be_hidden()
    expect(page.locator("#chart-title")).to_contain_text("meaningful only for music")

    other = 0.05 * np.random.default_rng(3).standard_normal(60 * SAMPLE_RATE)
    mixed = tmp_path / "talk-show.flac"
    mixed.write_bytes(encode(np.concatenate([real_music(1)[0], other]), SAMPLE_RATE, "FLAC", "PCM_16"))
    page.set_input_files("#file", str(mixed))
    expect(page.locator("#status")).to_contain_text("Done: talk-show.flac", timeout=60_000)
    stretches = page.locator("#genre-lane .stretch")
    kinds = [s.get_attribute("data-music") for s in stretches.all()]
    assert kinds[0] == "true" and kinds[-1] == "false", kinds
    assert stretches.last.inner_text() == "not music" and stretches.first.inner_text() in SHIPPED_LABELS


def test_similar_tracks_are_listed_when_the_service_has_a_library(page: Page, tmp_path: Path) -> None:
    library = embedding_library(tmp_path / "library")
    expect(page.locator("#similar-card")).to_be_hidden()  # the shared server has no library
    assert page.context.browser is not None
    with_library = page.context.browser.new_page()
    with running_server({"index_path": str(library)}) as (url, _):
        with_library.goto(url + "/")
        with_library.wait_for_function("() => state.library !== null")  # the page read /health
        with_library.set_input_files("#file", str(library.parent / "song-1.wav"))
        expect(with_library.locator("#similar-card")).to_contain_text("Similar tracks in the library")
        items = with_library.locator("#similar-list li")
        expect(items).to_have_count(7, timeout=30_000)  # five songs, a copy, hiss: fewer than 10
        expect(items.first).to_contain_text("song-1.wav")
        expect(items.first.locator(".p")).to_have_text("1.00")
        expect(with_library.locator("#similar-status")).to_contain_text("most alike of 7 tracks")
        ARTIFACTS.mkdir(exist_ok=True)
        with_library.screenshot(path=str(ARTIFACTS / "web-page-similar.png"), full_page=True)
    with_library.close()


def test_errors_are_shown_clearly(page: Page, tmp_path: Path) -> None:
    bad = tmp_path / "not-audio.mp3"
    bad.write_bytes(b"this is not audio at all" * 100)
    page.set_input_files("#file", str(bad))
    expect(page.locator("#status")).to_contain_text("Unsupported format", timeout=30_000)
    expect(page.locator("#status")).to_have_class("error")


def test_docs_render_offline(page: Page, server: tuple[str, subprocess.Popen[bytes]]) -> None:
    """Swagger UI renders the service's API with every request going to the service itself."""
    assert page.context.browser is not None
    docs = page.context.browser.new_page()
    requested: list[str] = []
    docs.on("request", lambda request: requested.append(request.url))
    docs.goto(server[0] + "/docs")
    expect(docs.locator(".swagger-ui .info .title")).to_contain_text("Music genre classifier", timeout=20_000)
    expect(docs.locator(".opblock-summary-path", has_text="/classify")).to_be_visible()
    docs.close()
    assert requested and all(url.startswith(server[0]) for url in requested), requested


def test_the_page_asks_for_a_key_when_the_service_needs_one(page: Page, tmp_path: Path) -> None:
    clip = tmp_path / "song.wav"
    clip.write_bytes(encode(music_like(5.0, 22050), 22050))
    assert page.context.browser is not None
    keyed = page.context.browser.new_page()
    with running_server({"api_keys": "page-test-key"}) as (url, _):
        keyed.goto(url + "/")
        keyed.set_input_files("#file", str(clip))
        expect(keyed.locator("#status")).to_contain_text("API key needed", timeout=30_000)
        expect(keyed.locator("#key-form")).to_be_visible()
        keyed.fill("#api-key", "wrong-key")
        keyed.click("#key-form button")
        expect(keyed.locator("#status")).to_contain_text("invalid API key", timeout=30_000)
        keyed.fill("#api-key", "page-test-key")
        keyed.click("#key-form button")  # the same file again, now with the key
        expect(keyed.locator("#status")).to_contain_text("Done", timeout=30_000)
        expect(keyed.locator("#chart .bar")).to_have_count(len(SHIPPED_LABELS))
    keyed.close()
