"""The headless-Chromium harness (tests/browser.py) sees what a report page gets wrong, plays H.264 mp4 and
16 kHz PCM wav, and leaves no process behind. Run with -s to see the launch and load times."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from . import browser
from .browser import BrowserError, BrowserTimeout, browse, needs_chromium, open_page
from .netns import needs_netns

pytestmark = needs_chromium  # and all but the last need the namespace too

FIRST_FRAME_RGB = (200, 30, 60)  # the clip's frame 0, which the page shows after the media check rewinds it


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """plot.png, clip.mp4 (H.264 yuv420p 512x512 25 fps 1 s + AAC 16 kHz stereo), ref.wav (PCM s16 16 kHz stereo)."""
    d = tmp_path_factory.mktemp("media")
    Image.new("RGB", (320, 200), (30, 120, 200)).save(d / "plot.png")
    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    with av.open(str(d / "clip.mp4"), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width = video.height = 512
        video.pix_fmt = "yuv420p"
        audio = out.add_stream("aac", rate=16000, layout="stereo")
        for i in range(25):
            rgb = np.empty((512, 512, 3), np.uint8)
            rgb[:] = FIRST_FRAME_RGB if i == 0 else (i * 10, 200 - i * 5, 100)
            out.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate = 16000
        out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
        out.mux(video.encode(None))
    with wave.open(str(d / "ref.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        pcm = (tone * 20000).astype(np.int16)
        w.writeframes(np.stack([pcm, pcm], axis=1).tobytes())
    (d / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return d


def _page(folder: Path, body: str) -> Path:
    html = folder / "index.html"
    html.write_text(f"<!doctype html>\n<html><head><meta charset='utf-8'><title>t</title></head>\n"
                    f"<body style='margin:0'>\n{body}\n</body></html>\n")
    return html


CLEAN_BODY = """<img id="plot" src="plot.png">
<video id="v" src="clip.mp4" preload="metadata" width="512" height="512" style="display:block"></video>
<audio src="ref.wav" controls preload="metadata"></audio>
<div style="height:1500px">tall, so that the screenshot must go past the viewport</div>"""


@needs_netns
def test_clean_page_reports_nothing_and_media_play(media: Path, tmp_path: Path) -> None:
    shot = tmp_path / "page.png"
    report = open_page(_page(media, CLEAN_BODY), screenshot=shot, evaluate=["document.title", "1 + 1"])
    print(f"\nclean page: {', '.join(f'{k} {v:.2f} s' for k, v in report.timings.items())}")
    report.assert_clean(warnings=True)
    assert report.values == {"document.title": "t", "1 + 1": 2}

    [img] = report.images
    assert (img.width, img.height) == (320, 200) and img.ok
    video, audio = report.media
    assert (video.tag, video.width, video.height, video.error, video.played) == ("video", 512, 512, None, True)
    assert video.duration == pytest.approx(1.0, abs=0.1) and video.decoded_frames and video.decoded_audio_bytes
    assert (audio.tag, audio.error, audio.played) == ("audio", None, True)
    assert audio.duration == pytest.approx(1.0, abs=0.01) and audio.decoded_audio_bytes

    with Image.open(shot) as im:
        assert im.format == "PNG" and im.width == 1400 and im.height > 1500  # full page, past the 1000 px viewport
        plot_px = im.convert("RGB").getpixel((160, 100))
        video_px = im.convert("RGB").getpixel((256, 200 + 256))  # the video sits under the 200 px plot
    assert plot_px == (30, 120, 200)
    assert all(abs(a - b) <= 12 for a, b in zip(video_px, FIRST_FRAME_RGB, strict=True)), video_px


@needs_netns
def test_broken_page_reports_each_problem(media: Path) -> None:
    body = """<img src="missing.png">
<video src="missing.mp4" preload="metadata"></video>
<video preload="metadata"><source src="missing-source.mp4" type="video/mp4"></video>
<video src="corrupt.mp4" preload="none"></video>
<audio src="ref.wav" preload="metadata"></audio>
<script>
console.error("plot failed", {n: 3});
console.warn("just a warning");
throw new Error("boom");
</script>"""
    report = open_page(_page(media, body))
    print(f"\nbroken page: {', '.join(f'{k} {v:.2f} s' for k, v in report.timings.items())}")
    problems = report.problems()
    print("\n".join(problems))

    assert [m.text for m in report.errors if m.source == "console-api"] == ["plot failed {n: 3}"]
    assert [m.text for m in report.warnings] == ["just a warning"]
    assert len(report.exceptions) == 1 and "Error: boom" in report.exceptions[0]
    failed = {Path(r.url).name: (r.resource_type, r.reason) for r in report.failed_requests}
    assert failed == {"missing.png": ("Image", "net::ERR_FILE_NOT_FOUND"),
                      "missing.mp4": ("Media", "net::ERR_FILE_NOT_FOUND"),
                      "missing-source.mp4": ("Media", "net::ERR_FILE_NOT_FOUND")}
    [img] = report.images
    assert not img.ok and img.width == 0
    errors = {Path(m.src).name: m.error for m in report.media}
    assert errors["missing.mp4"] and "MEDIA_ERR_SRC_NOT_SUPPORTED" in errors["missing.mp4"]
    assert errors["missing-source.mp4"] == "no playable source (NETWORK_NO_SOURCE)"
    assert errors["corrupt.mp4"] and errors["corrupt.mp4"].startswith("MEDIA_ERR_SRC_NOT_SUPPORTED")
    assert errors["ref.wav"] is None
    # one line each: 1 console error, 1 exception, 3 failed loads, 1 image, 3 media ("Failed to load resource"
    # console lines are folded into the failed loads)
    assert len(problems) == 9, problems
    with pytest.raises(AssertionError, match="9 problem"):
        report.assert_clean()


@needs_netns
def test_browse_evaluates_waits_and_cleans_up(media: Path) -> None:
    html = _page(media, "<p id=p>x</p><script>setTimeout(() => { window.ready = 42; }, 300);</script>")
    with browse(html, wait_js="window.ready") as page:
        assert page.evaluate("window.ready") == 42
        assert page.evaluate("new Promise(r => setTimeout(() => r(document.getElementById('p').textContent), 50))") \
            == "x"
        with pytest.raises(BrowserError, match="nope is not defined"):
            page.evaluate("nope.x")
        with pytest.raises(BrowserTimeout):
            page.wait_for("document.querySelector('#q').id", timeout=0.5)  # throws until it times out
        page.evaluate("setTimeout(() => { const q = document.createElement('b'); q.id = 'q'; "
                      "document.body.append(q); }, 100)")
        assert page.wait_for("document.querySelector('#q').id", timeout=5) == "q"
        assert page.processes()
        assert page.report().problems() == []  # evaluate()'s own throws are not the page's exceptions
    assert page.processes() == []


@needs_netns
def test_timeout_kills_chromium(media: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profiles: list[Path] = []
    kill = browser._kill_profile_users
    monkeypatch.setattr(browser, "_kill_profile_users", lambda profile: (profiles.append(profile), kill(profile)))
    start = time.monotonic()
    entered = []
    with pytest.raises(BrowserTimeout), browse(_page(media, "<p>never ready</p>"), timeout=3, wait_js="false"):
        entered.append(True)
    assert not entered  # wait_js never held, so the block never ran
    assert time.monotonic() - start < 15
    [profile] = profiles
    assert browser._profile_users(profile) == []


EXTERNAL_BODY = """<img src="http://example.com/logo.png"><img src="http://192.0.2.1/x.png">
<script src="https://cdn.example.com/lib.js"></script>"""
EXTERNAL = ["http://example.com/logo.png", "http://192.0.2.1/x.png", "https://cdn.example.com/lib.js"]


@needs_netns
@pytest.mark.parametrize(("flags", "reason"), [
    ((), "net::ERR_NAME_NOT_RESOLVED"),  # the harness's --host-resolver-rules answers every lookup itself
    (("--host-resolver-rules=",), "net::ERR_INTERNET_DISCONNECTED"),  # without them: the namespace has no route
], ids=["resolver-rules", "namespace-only"])
def test_offline_requests_fail_at_once(media: Path, flags: tuple[str, ...], reason: str) -> None:
    start = time.monotonic()
    report = open_page(_page(media, EXTERNAL_BODY), media=False, flags=flags)
    assert time.monotonic() - start < 20
    assert report.external_requests == EXTERNAL
    assert {r.url: r.reason for r in report.failed_requests} == dict.fromkeys(EXTERNAL, reason)
    assert sum(p.startswith("external request") for p in report.problems()) == 3
