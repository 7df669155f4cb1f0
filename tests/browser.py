"""Open a local HTML page in headless Chromium (the system's, driven over the DevTools protocol) and report
what went wrong on it: console errors and warnings, uncaught exceptions, failed resource loads, requests
that would leave the machine, images that did not decode, and <video>/<audio> that cannot load or play.

    from .browser import needs_chromium, open_page

    @needs_chromium
    def test_report_page(tmp_path):
        report = open_page(tmp_path / "report" / "index.html", screenshot=tmp_path / "page.png")
        report.assert_clean()  # AssertionError listing every problem
        assert report.media and all(m.played for m in report.media)

For more control (evaluate JS while the page is open, wait for a condition, screenshot at a chosen moment):

    with browse(html, wait_js="window.plotsReady === true") as page:
        n = page.evaluate("document.querySelectorAll('img.plot').length")
        media = page.check_media()
        page.screenshot(tmp_path / "page.png")
        report = page.report()

No pip dependency: Chromium runs with --remote-debugging-pipe (it reads commands on fd 3 and writes replies
on fd 4, each JSON message ending in a NUL byte). By default it runs in a loopback-only network namespace
(tests/netns.py), so nothing can reach the network and a DNS lookup fails at once instead of hanging.
Every process Chromium starts is killed when the page is closed or the timeout passes.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .netns import netns_command, netns_unavailable_reason

__all__ = ["BrowserError", "BrowserTimeout", "ConsoleMessage", "FailedRequest", "ImageState", "MediaState", "Page",
           "PageReport", "browse", "chromium_path", "needs_chromium", "open_page"]

# Debian's /usr/bin/chromium is a shell wrapper that adds flags from /etc/chromium.d (remote extensions, API keys,
# a /dev/shm probe that breaks when findmnt prints two lines); the binary behind it is used directly when present.
_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome-stable", "google-chrome")

# Headless, no sandbox (tests run as root), and nothing that phones home or runs in the background.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required", "--mute-audio",
    "--no-first-run", "--no-default-browser-check", "--no-service-autorun", "--no-pings", "--disable-sync",
    "--disable-extensions", "--disable-component-extensions-with-background-pages", "--disable-default-apps",
    "--disable-background-networking", "--disable-component-update", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection", "--disable-breakpad", "--disable-crash-reporter",
    "--disable-field-trial-config", "--disable-search-engine-choice-screen", "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions,CalculateNativeWinOcclusion",
    "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding", "--disable-hang-monitor", "--disable-popup-blocking",
    "--disable-prompt-on-repost", "--disable-dev-shm-usage", "--password-store=basic", "--use-mock-keychain",
    "--force-color-profile=srgb", "--hide-scrollbars", "--remote-debugging-pipe",
    # Even with the flags above, Chromium 156 looks up accounts.google.com, clients2.google.com and
    # update.googleapis.com at startup; this answers every lookup "not found" without asking DNS.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
)

_BASH = shutil.which("bash") or "/bin/bash"

# Schemes a self-contained page may load from; anything else is reported as an external request.
_LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "chrome-error:", "devtools:")


def chromium_path() -> str | None:
    """The Chromium binary to run: $LTXA_CHROMIUM if set, else the first of _CANDIDATES found; None if none."""
    for name in (os.environ.get("LTXA_CHROMIUM", ""), *_CANDIDATES):
        found = name and (shutil.which(name) or (name if os.access(name, os.X_OK) else None))
        if found:
            return str(found)
    return None


needs_chromium = pytest.mark.skipif(
    chromium_path() is None, reason="Chromium not found: `apt-get install chromium` (scripts/setup.sh installs it)")


class BrowserError(RuntimeError):
    """Chromium exited, refused a command or could not be started."""


class BrowserTimeout(BrowserError, TimeoutError):
    """The page did not get where it was asked to within the timeout."""


@dataclass(frozen=True)
class ConsoleMessage:
    level: str  # "error" or "warning"
    text: str
    source: str  # "console-api", "javascript", "network", "security", "deprecation", ...
    url: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.url}:{self.line}" if self.url and self.line is not None else self.url
        return f"console {self.level} [{self.source}]: {self.text}" + (f" ({where})" if where else "")


@dataclass(frozen=True)
class FailedRequest:
    url: str
    reason: str  # "net::ERR_FILE_NOT_FOUND", "HTTP 404", ...
    resource_type: str  # "Image", "Media", "Script", "Document", ...

    def __str__(self) -> str:
        return f"failed {self.resource_type} load: {self.url}: {self.reason}"


@dataclass(frozen=True)
class ImageState:
    src: str
    width: int  # naturalWidth: 0 when the image did not decode
    height: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.width > 0


@dataclass(frozen=True)
class MediaState:
    tag: str  # "video" or "audio"
    src: str
    ready_state: int
    error: str | None  # "MEDIA_ERR_SRC_NOT_SUPPORTED: ...", "no metadata after 20 s", "play(): NotAllowedError ..."
    duration: float | None
    width: int  # videoWidth (0 for audio)
    height: int
    played: bool | None  # currentTime advanced while playing; None when not tried
    advanced: float  # seconds currentTime moved during the play test
    decoded_frames: int | None  # video frames decoded (getVideoPlaybackQuality), None for audio
    decoded_audio_bytes: int | None  # webkitAudioDecodedByteCount

    @property
    def ok(self) -> bool:
        return self.error is None and self.ready_state >= 1 and self.played is not False


@dataclass
class PageReport:
    """What one page did. `problems()` lists everything that should fail a test; warnings are kept apart."""

    url: str
    console: list[ConsoleMessage] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    failed_requests: list[FailedRequest] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)  # URLs outside _LOCAL_SCHEMES the page asked for
    images: list[ImageState] = field(default_factory=list)
    media: list[MediaState] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)  # open_page(evaluate=[...]): expression -> its value
    screenshot: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)  # launch_s, load_s, wait_s, checks_s, total_s

    @property
    def errors(self) -> list[ConsoleMessage]:
        return [m for m in self.console if m.level == "error"]

    @property
    def warnings(self) -> list[ConsoleMessage]:
        return [m for m in self.console if m.level == "warning"]

    def problems(self, *, warnings: bool = False) -> list[str]:
        """One line per problem: console errors (and warnings if asked), exceptions, failed and external
        requests, images that did not decode, media that did not load or play."""
        failed = {r.url for r in self.failed_requests}  # "Failed to load resource" messages say it twice
        out = [str(m) for m in (self.console if warnings else self.errors)
               if not (m.source == "network" and m.url in failed)]
        out += [f"uncaught exception: {e}" for e in self.exceptions]
        out += [str(r) for r in self.failed_requests]
        out += [f"external request: {u}" for u in self.external_requests]
        out += [f"image not drawn: {i.src}: {i.error or 'naturalWidth 0'}" for i in self.images if not i.ok]
        out += [f"{m.tag} failed: {m.src}: {m.error or 'did not play'}" for m in self.media if not m.ok]
        return out

    def assert_clean(self, *, warnings: bool = False) -> None:
        problems = self.problems(warnings=warnings)
        assert not problems, f"{len(problems)} problem(s) on {self.url}:\n  " + "\n  ".join(problems)


# Waits for every <img> to decode (lazy ones are made eager first); one entry per image.
IMAGES_JS = """(async (timeoutMs) => Promise.all([...document.images].map(async (img) => {
  if (img.loading === 'lazy') img.loading = 'eager';
  let error = null;
  const late = new Promise((_, no) => setTimeout(() => no(new Error(`not decoded after ${timeoutMs / 1000} s`)),
                                                  timeoutMs));
  try { await Promise.race([img.decode(), late]); } catch (e) { error = `${e.name}: ${e.message}`; }
  return {src: img.currentSrc || img.src, width: img.naturalWidth, height: img.naturalHeight, error};
})))"""

# For every <video>/<audio>: wait for metadata or an error, then play it muted and watch currentTime move, then
# pause and rewind it.
# A failed <source> child leaves el.error null and networkState NETWORK_NO_SOURCE, a state that load() also passes
# through for a moment: it counts as a failure once it has lasted 300 ms.
MEDIA_JS = """(async (timeoutMs, playMs, doPlay) => {
  const codes = {1: 'MEDIA_ERR_ABORTED', 2: 'MEDIA_ERR_NETWORK', 3: 'MEDIA_ERR_DECODE',
                 4: 'MEDIA_ERR_SRC_NOT_SUPPORTED'};
  const describe = (e) => (codes[e.code] || `code ${e.code}`) + (e.message ? `: ${e.message}` : '');
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const settled = async (el) => {
    const until = performance.now() + timeoutMs;
    let noSource = null;
    while (el.readyState < 1 && !el.error && performance.now() < until) {
      if (el.networkState !== HTMLMediaElement.NETWORK_NO_SOURCE) noSource = null;
      else if (noSource === null) noSource = performance.now();
      else if (performance.now() - noSource >= 300) return 'no playable source (NETWORK_NO_SOURCE)';
      await sleep(25);
    }
    if (el.error) return describe(el.error);
    return el.readyState >= 1 ? null : `no metadata after ${timeoutMs / 1000} s (readyState 0)`;
  };
  const meta = async (el) => {
    if (el.readyState === 0 && !el.error && el.preload === 'none') { el.preload = 'metadata'; el.load(); }
    const error = await settled(el);
    const src = el.currentSrc || el.src || (el.querySelector('source') || {}).src || '';
    return {tag: el.tagName.toLowerCase(), src, error, played: null, advanced: 0};
  };
  const play = async (el, r) => {
    const [muted, start] = [el.muted, el.currentTime];
    el.muted = true;
    const want = Math.min(0.2, (el.duration || 1) / 4);
    try {
      await el.play();
      const until = performance.now() + playMs;
      while (el.currentTime - start < want && !el.ended && !el.error && performance.now() < until) await sleep(25);
      r.advanced = el.currentTime - start;
      r.played = r.advanced >= want || el.ended;
      if (el.error) r.error = `while playing: ${describe(el.error)}`;
    } catch (e) {
      r.played = false;
      r.error = `play(): ${e.name}: ${e.message}`;
    }
    el.pause();
    const seeked = new Promise((resolve) => { el.addEventListener('seeked', resolve, {once: true}); });
    el.currentTime = start;  // back where it was, so that a screenshot shows the same frame
    await Promise.race([seeked, sleep(1000)]);
    el.muted = muted;
  };
  const els = [...document.querySelectorAll('video, audio')];
  const results = await Promise.all(els.map(meta));  // metadata of all at once, then play tests a few at a time
  const playable = doPlay ? els.map((el, i) => [el, results[i]]).filter(([, r]) => !r.error) : [];
  for (let i = 0; i < playable.length; i += 4) {
    await Promise.all(playable.slice(i, i + 4).map(([el, r]) => play(el, r)));
  }
  return els.map((el, i) => {
    const q = el.getVideoPlaybackQuality ? el.getVideoPlaybackQuality() : null;
    return {...results[i], ready_state: el.readyState, duration: Number.isFinite(el.duration) ? el.duration : null,
            width: el.videoWidth || 0, height: el.videoHeight || 0, decoded_frames: q ? q.totalVideoFrames : null,
            decoded_audio_bytes: el.webkitAudioDecodedByteCount ?? null};
  });
})"""


class Page:
    """One tab in a running Chromium; made by `browse`. Collects console messages, exceptions and network
    failures as they arrive, whenever a command waits for a reply."""

    def __init__(self, proc: subprocess.Popen[bytes], cmd_fd: int, resp_fd: int, profile: Path, stderr_path: Path,
                 deadline: float):
        self._proc, self._cmd_fd, self._resp_fd, self._profile = proc, cmd_fd, resp_fd, profile
        self._stderr_path, self.deadline = stderr_path, deadline
        self._buf, self._next_id, self._session = b"", 0, ""
        self._requests: dict[str, tuple[str, str]] = {}  # requestId -> (url, type)
        self._loaded = False
        self._rep = PageReport(url="")

    # --- the protocol -------------------------------------------------------------------------------------
    def send(self, method: str, params: dict[str, Any] | None = None, *, browser: bool = False,
             timeout: float | None = None) -> dict[str, Any]:
        """Send one DevTools command (to the page's session unless `browser`) and return its result."""
        sent = self._post(method, params, browser=browser)
        deadline = self.deadline if timeout is None else min(self.deadline, time.monotonic() + timeout)
        while True:
            reply = self._read(deadline, f"a reply to {method}")
            if reply.get("id") == sent:
                if "error" in reply:
                    err = reply["error"]
                    raise BrowserError(f"{method} failed: {err.get('message')} {err.get('data', '')}".rstrip())
                return reply.get("result", {})
            self._on_event(reply)

    def _post(self, method: str, params: dict[str, Any] | None = None, *, browser: bool = False) -> int:
        """Write one command without waiting for its reply (which `send` will then skip); returns its id."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session and not browser:
            msg["sessionId"] = self._session
        data = json.dumps(msg).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._cmd_fd, data):]
        except OSError as exc:
            raise BrowserError(f"{method}: Chromium stopped reading commands ({exc}){self._stderr_tail()}") from None
        return self._next_id

    def pump(self, seconds: float = 0.0) -> None:
        """Handle the events that arrive within `seconds` (none waited for when 0)."""
        until = time.monotonic() + seconds
        while True:
            msg = self._read(until, "events", quiet=True)
            if msg is None:
                return
            self._on_event(msg)

    def _read(self, deadline: float, what: str, *, quiet: bool = False) -> Any:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._resp_fd], [], [], left)[0]:
                if quiet:
                    return None
                raise BrowserTimeout(f"timed out waiting for {what}{self._stderr_tail()}")
            chunk = os.read(self._resp_fd, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium exited (code {self._proc.poll()}) while waiting for {what}"
                                   f"{self._stderr_tail()}")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def _on_event(self, msg: dict[str, Any]) -> None:
        method, p, rep = msg.get("method", ""), msg.get("params", {}), self._rep
        if not method or msg.get("sessionId") != self._session:
            return  # a stale reply, or an event of the browser or of another tab
        if method == "Page.loadEventFired":
            self._loaded = True
        elif method == "Page.javascriptDialogOpening":  # alert() & co. would block the page: dismiss, record
            self._post("Page.handleJavaScriptDialog", {"accept": p.get("type") != "beforeunload"})
            rep.console.append(ConsoleMessage("error", f"{p.get('type')} dialog: {p.get('message', '')}", "dialog",
                                              p.get("url", "")))
        elif method == "Inspector.targetCrashed":
            rep.exceptions.append("the page's renderer crashed")
            raise BrowserError(f"the renderer of {rep.url} crashed{self._stderr_tail()}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
            text = " ".join(_remote_text(a) for a in p.get("args", []))
            frame = (p.get("stackTrace") or {}).get("callFrames") or [{}]
            rep.console.append(ConsoleMessage("warning" if p["type"] == "warning" else "error", text, "console-api",
                                              frame[0].get("url", ""), _line(frame[0].get("lineNumber"))))
        elif method == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
            e = p["entry"]
            rep.console.append(ConsoleMessage(e["level"], e.get("text", ""), e.get("source", ""), e.get("url", ""),
                                              _line(e.get("lineNumber"))))
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            text = " ".join(t for t in (d.get("text"), (d.get("exception") or {}).get("description")) if t)
            rep.exceptions.append(f"{text} ({d.get('url', '')}:{_line(d.get('lineNumber'))})")
        elif method == "Network.requestWillBeSent":
            url = p["request"]["url"]
            self._requests[p["requestId"]] = (url, p.get("type", "Other"))
            if not url.startswith(_LOCAL_SCHEMES) and url not in rep.external_requests:
                rep.external_requests.append(url)
        elif method == "Network.responseReceived" and p["response"].get("status", 0) >= 400:
            r = p["response"]
            rep.failed_requests.append(FailedRequest(r["url"], f"HTTP {r['status']}", p.get("type", "Other")))
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            url, kind = self._requests.get(p["requestId"], ("?", p.get("type", "Other")))
            reason = p.get("errorText", "") + (f" (blocked: {p['blockedReason']})" if p.get("blockedReason") else "")
            rep.failed_requests.append(FailedRequest(url, reason, p.get("type", kind)))

    def _stderr_tail(self, limit: int = 3000) -> str:
        """The end of Chromium's stderr, for error messages; without its D-Bus complaints (there is no bus)."""
        with contextlib.suppress(OSError):
            lines = self._stderr_path.read_text(errors="replace").splitlines()
            text = "\n".join(line for line in lines if ":ERROR:dbus/" not in line).strip()
            if text:
                return f"\n--- chromium stderr (last {min(limit, len(text))} chars)\n{text[-limit:]}"
        return ""

    # --- what tests call ----------------------------------------------------------------------------------
    def evaluate(self, expression: str, *, timeout: float | None = None) -> Any:
        """The value of a JS expression (promises awaited; the value must be JSON-able). A thrown error raises
        BrowserError (and is not counted as an uncaught exception of the page)."""
        res = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True,
                                             "userGesture": True}, timeout=timeout)
        if "exceptionDetails" in res:
            d = res["exceptionDetails"]
            raise BrowserError(f"evaluate({expression[:200]!r}) threw: "
                               f"{(d.get('exception') or {}).get('description') or d.get('text')}")
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, *, timeout: float | None = None, interval: float = 0.1) -> Any:
        """Poll a JS expression until it is truthy and return its value (a throw counts as not yet);
        BrowserTimeout when it never is."""
        until = self.deadline if timeout is None else min(self.deadline, time.monotonic() + timeout)
        value: Any = None
        while time.monotonic() < until:
            try:
                value = self.evaluate(expression, timeout=until - time.monotonic())
            except BrowserTimeout:
                break
            except BrowserError as exc:  # e.g. `window.plots.ready` before `plots` exists: not yet
                value = exc
            if value and not isinstance(value, BrowserError):
                return value
            self.pump(min(interval, max(0.0, until - time.monotonic())))
        raise BrowserTimeout(f"`{expression}` still {value!r} after the timeout{self._stderr_tail()}")

    def check_images(self, *, timeout: float = 20.0) -> list[ImageState]:
        """Every <img>, decoded (broken ones carry an error); also stored in the report."""
        raw = self.evaluate(f"{IMAGES_JS}({timeout * 1000:.0f})", timeout=timeout + 10)
        self._rep.images = [ImageState(**i) for i in raw]
        return self._rep.images

    def check_media(self, *, timeout: float = 20.0, play: bool = True, play_seconds: float = 5.0) -> list[MediaState]:
        """Every <video>/<audio>: its metadata or error (all loaded at once, `timeout` s), then, if `play`, a muted
        play() of each (four at a time) that must move currentTime by 0.2 s (or a quarter of the duration) within
        `play_seconds`; then pause and rewind. Also stored in the report."""
        n = self.evaluate("document.querySelectorAll('video, audio').length")
        raw = self.evaluate(f"{MEDIA_JS}({timeout * 1000:.0f}, {play_seconds * 1000:.0f}, {str(play).lower()})",
                            timeout=timeout + (play_seconds + 1) * -(-n // 4) * play + 10)
        self.pump()
        self._rep.media = [MediaState(**m) for m in raw]
        return self._rep.media

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole scrollable page when `full_page`, else the viewport)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": max(1, size["width"]),
                                                            "height": min(max(1, size["height"]), 16384), "scale": 1})
        data = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self._rep.screenshot = path
        return path

    def processes(self) -> list[int]:
        """Pids of this browser's live processes (none once closed)."""
        return _profile_users(self._profile)

    def report(self) -> PageReport:
        """The report so far (events that already arrived are taken in first)."""
        self.pump()
        return self._rep

    # --- lifetime -----------------------------------------------------------------------------------------
    def _open(self, url: str, width: int, height: int) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, browser=True)["targetId"]
        self._session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                  browser=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network", "Inspector"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False})
        self._rep.url, self._loaded = url, False
        nav = self.send("Page.navigate", {"url": url})
        if nav.get("errorText"):
            raise BrowserError(f"cannot open {url}: {nav['errorText']}")
        while not self._loaded:
            self._on_event(self._read(self.deadline, f"the load event of {url}"))

    def close(self) -> None:
        """Ask Chromium to quit, then kill whatever of it is left; idempotent."""
        self.deadline = time.monotonic() + 5
        if self._proc.poll() is None and self._cmd_fd >= 0:
            with contextlib.suppress(BrowserError, OSError):
                self.send("Browser.close", browser=True, timeout=5)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
        _kill_group(self._proc.pid)
        _kill_profile_users(self._profile)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=10)
        for fd in (self._cmd_fd, self._resp_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._cmd_fd = self._resp_fd = -1


@contextlib.contextmanager
def browse(html: Path | str, *, timeout: float = 60, wait_js: str | None = None, width: int = 1400,
           height: int = 1000, offline: bool = True, flags: Sequence[str] = ()) -> Iterator[Page]:
    """Launch Chromium, open `html` (a path, or a file:// URL) and wait for its load event and then for
    `wait_js` to be truthy; yield the Page; always close Chromium. Everything, including the caller's work
    inside the block, must fit in `timeout` seconds. `offline` runs it in a loopback-only network namespace."""
    t0 = time.monotonic()
    url = html if isinstance(html, str) and "://" in html else Path(html).resolve().as_uri()
    exe = chromium_path()
    if exe is None:
        raise BrowserError("Chromium not found: apt-get install chromium")
    if offline and (why := netns_unavailable_reason()):
        raise BrowserError(f"cannot run Chromium offline: {why} (pass offline=False to run without a namespace)")
    with tempfile.TemporaryDirectory(prefix="ltxa-chromium-") as tmp:
        profile, stderr_path = Path(tmp) / "profile", Path(tmp) / "stderr.txt"
        cmd_r, cmd_w = os.pipe()
        resp_r, resp_w = os.pipe()
        # pass_fds keeps the pipe ends at their own numbers; bash moves them to the 3 and 4 Chromium reads (dash
        # takes one-digit fds only). They are first moved above 9, so that neither is already 3 or 4.
        cmd_r, resp_w = (_move_above_9(fd) for fd in (cmd_r, resp_w))
        argv = [_BASH, "-c", f'exec "$@" 3<&{cmd_r} 4>&{resp_w} {cmd_r}<&- {resp_w}>&-', "bash", exe,
                f"--user-data-dir={profile}", f"--window-size={width},{height}", *CHROMIUM_FLAGS, *flags,
                "about:blank"]
        try:
            with stderr_path.open("wb") as err:
                proc = subprocess.Popen(netns_command(argv) if offline else argv, stdin=subprocess.DEVNULL,
                                        stdout=err, stderr=err, pass_fds=(cmd_r, resp_w), start_new_session=True,
                                        preexec_fn=_die_with_parent)
        except BaseException:
            os.close(cmd_w)
            os.close(resp_r)
            raise
        finally:
            os.close(cmd_r)
            os.close(resp_w)
        page = Page(proc, cmd_w, resp_r, profile, stderr_path, t0 + timeout)
        try:
            page.send("Browser.getVersion", browser=True)
            t1 = time.monotonic()
            page._open(url, width, height)
            t2 = time.monotonic()
            if wait_js:
                page.wait_for(wait_js)
            page._rep.timings.update(launch_s=t1 - t0, load_s=t2 - t1, wait_s=time.monotonic() - t2)
            yield page
        finally:
            page.close()


def open_page(html: Path | str, *, timeout: float = 60, screenshot: Path | None = None, wait_js: str | None = None,
              evaluate: Sequence[str] = (), media: bool = True, images: bool = True, width: int = 1400,
              height: int = 1000, offline: bool = True, flags: Sequence[str] = ()) -> PageReport:
    """Open `html`, wait for load and `wait_js`, check images and media (unless turned off), evaluate each
    expression in `evaluate` (values in report.values), take a full-page screenshot if asked, close Chromium
    and return the report. Does not fail on problems itself: call `report.assert_clean()`."""
    t0 = time.monotonic()
    with browse(html, timeout=timeout, wait_js=wait_js, width=width, height=height, offline=offline,
                flags=flags) as page:
        t1 = time.monotonic()
        if images:
            page.check_images()
        if media:
            page.check_media(timeout=max(1.0, min(20.0, page.deadline - time.monotonic() - 10)))
        for expr in evaluate:
            page._rep.values[expr] = page.evaluate(expr)
        if screenshot is not None:
            page.screenshot(screenshot)
        page.pump(0.1)  # late console messages from the checks
        report = page.report()
        report.timings["checks_s"] = time.monotonic() - t1
    report.timings["total_s"] = time.monotonic() - t0
    return report


def _remote_text(arg: dict[str, Any]) -> str:
    """A console.* argument as text: strings as they are, objects from their preview ({a: 1}, [1, 2])."""
    if "value" in arg:
        return arg["value"] if isinstance(arg["value"], str) else json.dumps(arg["value"])
    preview = arg.get("preview")
    if preview and preview.get("type") == "object" and preview.get("subtype") not in ("error", "node"):
        items = [p.get("value", p.get("type", "")) if preview.get("subtype") == "array"
                 else f"{p['name']}: {p.get('value', p.get('type', ''))}" for p in preview.get("properties", [])]
        more = ", …" if preview.get("overflow") else ""
        return ("[{}]" if preview.get("subtype") == "array" else "{{{}}}").format(", ".join(items) + more)
    return str(arg.get("description") or arg.get("unserializableValue") or arg.get("type", ""))


def _line(zero_based: int | None) -> int | None:
    return None if zero_based is None else zero_based + 1


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends it SIGKILL when the test process dies, so a pytest killed by
    SIGKILL or a CI timeout does not leave Chromium running (PR_SET_PDEATHSIG survives the exec chain)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def _move_above_9(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _profile_users(profile: Path) -> list[int]:
    """Live processes whose command line names this throwaway profile (every Chromium process does)."""
    needle, pids = f"--user-data-dir={profile}".encode(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if needle in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
    return pids


def _kill_profile_users(profile: Path, wait: float = 5.0) -> None:
    """SIGKILL those (helpers that left the process group, if any) and wait until they are gone."""
    until = time.monotonic() + wait
    while (pids := _profile_users(profile)) and time.monotonic() < until:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
