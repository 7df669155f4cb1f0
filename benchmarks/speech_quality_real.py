"""DNSMOS (`backends/speech_quality.py`) and the SNR meter (`analysis/audio_quality.py`) on real speech degraded at
known levels.

    python benchmarks/speech_quality_real.py [--hop 0.5] [--no-wrapper]

Speech: pyannote.audio's sample.wav (30 s, two speakers, 16 kHz) and its sample.rttm. Windows: 3.5 s (a reference
window) on a `--hop` grid, where one speaker covers at least 60% of the window and the other at most 0.15 s (the
RTTM's edges are loose). The sample holds little solo speech, so the windows overlap: they span about 7 s of
distinct audio. The environment's other audio files are listed; none is speech (scipy's test tones), so none is
used.

Conditions (float32 throughout, no 16-bit rounding):

    clean               the window as recorded (its own floor: about 35-40 dB below the speech)
    reverb 0.3 s / 1 s  the recording convolved with exponentially decaying Gaussian noise (RT60 0.3 s, 1.0 s;
                        no separate direct path, unit energy), then windowed
    music +10 / 0 dB    a bed of chords (triads of 4-harmonic tones, 2 s each) and a 120 bpm beat (kick on the
                        beat, noise snare off it), speech-to-music ratio 10 / 0 dB
    noise 20/10/0 dB    white Gaussian noise at that SNR
    talker -6 / -14 dB  the other speaker's solo speech (its turns joined) underneath, that much below the speaker
    telephone           300-3400 Hz (4th-order Butterworth), down to 8 kHz and back up to 16 kHz
    opus 6k / mp3 16k   ffmpeg round trip: libopus at 6 kbit/s, libmp3lame at 16 kbit/s, decoded to 16 kHz
    level -10 / -35     the window scaled to -10 / -35 dBFS RMS (the scorer normalises level: should match clean)

Levels: the speech level of a window is the RMS over the 20 ms frames inside the speaker's turns; additive
interferers (noise, music, talker) are scaled against it per window. Each condition's windows go to DNSMOS in one
`score` call (batched, 1 thread); its CPU time (process time) per window is printed beside the SNR meter's
(`measure(audio[None, :], 16000, turns).snr_db`, turns from the RTTM).

Printed: per condition the mean SIG, BAK, OVRL, personalized OVRL and SNR estimate, DNSMOS's CPU per window; then
per measure how far clean's mean is above each condition's and in how many windows (paired) clean is higher; the
share of each condition's windows that pass floors (`--min-sig` ...: the defaults are the floors suggested for
references); the cost of DNSMOS per window against the SNR meter's; and (unless --no-wrapper) the scorer's one tiled
inference per window against speechmos's preparation (the window doubled to at least 9.01 s, scored at every 1 s
hop that fits and averaged: 5 inferences for 3.5 s), on the same windows; and the model's readings of the
level rows without the normalisation.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, fftconvolve, resample_poly, sosfilt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ltxa_data.analysis.audio_quality import measure  # noqa: E402
from ltxa_data.backends.speech_quality import INPUT_SAMPLES, Dnsmos, calibrate, normalise_level  # noqa: E402

RATE = 16000
WINDOW_S = 3.5
"""A reference window; target windows are 4.84 s (`--window 4.84`)."""
FRAME = 320
MEASURES = ("sig", "bak", "ovrl", "povrl", "snr")
Turns = list[tuple[str, float, float]]
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".aiff", ".au", ".sph")


def sample_paths() -> tuple[Path, Path]:
    """pyannote.audio's sample.wav and sample.rttm."""
    spec = importlib.util.find_spec("pyannote.audio")
    if spec is None or spec.origin is None:
        sys.exit("pyannote.audio is not installed: its sample/sample.wav is the speech this benchmark scores")
    folder = Path(spec.origin).parent / "sample"
    return folder / "sample.wav", folder / "sample.rttm"


def read_turns(rttm: Path) -> Turns:
    """(speaker, start, end) of every RTTM line."""
    out = []
    for line in rttm.read_text().splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == "SPEAKER":
            out.append((f[7], float(f[3]), float(f[3]) + float(f[4])))
    return out


def covered(turns: Turns, s: float, e: float, speaker: str, own: bool) -> float:
    """Seconds of [s, e] inside `speaker`'s turns (own) or the other speakers' (not own)."""
    return sum(max(0.0, min(e, b) - max(s, a)) for who, a, b in turns if (who == speaker) == own)


def windows(turns: Turns, duration: float, hop: float, length: float) -> list[tuple[str, float]]:
    """(speaker, start) of the windows one speaker holds (>= 60% of it, the other <= 0.15 s)."""
    out = []
    for speaker in sorted({t[0] for t in turns}):
        for k in range(int((duration - length) / hop) + 1):
            s = round(k * hop, 3)
            if (covered(turns, s, s + length, speaker, True) >= 0.6 * length
                    and covered(turns, s, s + length, speaker, False) <= 0.15):
                out.append((speaker, s))
    return out


def spans(turns: Turns, speaker: str, s: float, length: float) -> list[tuple[float, float]]:
    """The speaker's turns inside the window starting at `s`, in seconds from its start."""
    return [(max(a, s) - s, min(b, s + length) - s) for who, a, b in turns
            if who == speaker and b > s and a < s + length]


def speech_rms(x: np.ndarray, sp: list[tuple[float, float]]) -> float:
    """RMS over the 20 ms frames whose centre lies in the speaker's turns."""
    k = len(x) // FRAME
    p = np.mean(np.square(x[: k * FRAME].reshape(k, FRAME)), axis=1)
    c = (np.arange(k) + 0.5) * FRAME / RATE
    m = np.zeros(k, bool)
    for a, b in sp:
        m |= (c >= a) & (c < b)
    return math.sqrt(float(np.mean(p[m] if m.any() else p)))


def solo_track(x: np.ndarray, turns: Turns, speaker: str) -> np.ndarray:
    """`speaker`'s turns with no other speaker, joined (the interfering talker)."""
    parts = []
    for who, a, b in turns:
        if who != speaker:
            continue
        pieces = [(a, b)]
        for w2, a2, b2 in turns:
            if w2 == speaker:
                continue
            cut = []
            for s, e in pieces:
                cut += [(s, min(e, a2)), (max(s, b2), e)] if a2 < e and s < b2 else [(s, e)]
            pieces = [(s, e) for s, e in cut if e - s > 0.05]
        parts += [x[int(s * RATE): int(e * RATE)] for s, e in pieces]
    return np.concatenate(parts)


def reverb(x: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """`x` convolved with exponentially decaying Gaussian noise of that RT60 (-60 dB at rt60), unit energy."""
    t = np.arange(int(rt60 * RATE)) / RATE
    h = rng.standard_normal(t.size) * np.exp(-3 * math.log(10) * t / rt60)
    return fftconvolve(x, h / np.linalg.norm(h))[: x.size]


def music(n: int, rng: np.random.Generator) -> np.ndarray:
    """Chords (2 s each, triads of 4-harmonic tones) and a 120 bpm beat: kick on the beat, a noise snare off it."""
    t = np.arange(n) / RATE
    chords = [(261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7)]
    out = np.zeros(n)
    for i in range(0, n, 2 * RATE):
        seg = t[i: i + 2 * RATE] - t[i]
        env = np.minimum(1.0, seg / 0.02) * np.exp(-seg / 1.5)
        f0s = chords[(i // (2 * RATE)) % len(chords)]
        out[i: i + seg.size] += env * sum(np.sin(2 * np.pi * f * h * seg + rng.uniform(0, 2 * np.pi)) / h
                                          for f in f0s for h in range(1, 5))
    beat = RATE // 2
    kt = np.arange(int(0.15 * RATE)) / RATE
    kick = np.sin(2 * np.pi * (50 * kt + 60 * 0.03 * (1 - np.exp(-kt / 0.03)))) * np.exp(-kt / 0.05) * 4
    snare = sosfilt(butter(2, [1000, 6000], "bandpass", fs=RATE, output="sos"),
                    rng.standard_normal(int(0.08 * RATE))) * np.exp(-np.arange(int(0.08 * RATE)) / (0.02 * RATE)) * 6
    for i in range(0, n, beat):
        k = min(kick.size, n - i)
        out[i: i + k] += kick[:k]
        j = i + beat // 2
        if j < n:
            m = min(snare.size, n - j)
            out[j: j + m] += snare[:m]
    return out


def telephone(x: np.ndarray) -> np.ndarray:
    """300-3400 Hz, resampled to 8 kHz and back."""
    y = sosfilt(butter(4, [300, 3400], "bandpass", fs=RATE, output="sos"), x)
    return resample_poly(resample_poly(y, 1, 2), 2, 1)[: x.size]


def codec(x: np.ndarray, args: list[str], suffix: str) -> np.ndarray:
    """An ffmpeg encode-decode round trip, back to 16 kHz mono, aligned to `x` by cross-correlation."""
    with tempfile.TemporaryDirectory() as d:
        src, enc, dec = Path(d) / "in.wav", Path(d) / f"enc{suffix}", Path(d) / "out.wav"
        sf.write(src, x.astype(np.float32), RATE, subtype="FLOAT")
        for cmd in (["-i", str(src), *args, str(enc)], ["-i", str(enc), "-ar", str(RATE), "-ac", "1", str(dec)]):
            subprocess.run(["ffmpeg", "-v", "error", "-y", *cmd], check=True)
        y, _ = sf.read(dec, dtype="float64")
    ref, probe = x[RATE * 10: RATE * 20], y[RATE * 10 - 2000: RATE * 20 + 2000]
    lag = int(np.argmax(np.correlate(probe, ref, "valid"))) - 2000
    y = y[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag), y])
    return np.pad(y, (0, max(0, x.size - y.size)))[: x.size]


def conditions(x: np.ndarray, turns: Turns, wins: list[tuple[str, float]],
               length: float, rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    """Every condition's windows (float64), in the order of `wins`."""
    n = int(length * RATE)

    def cut(y: np.ndarray) -> list[np.ndarray]:
        return [y[int(s * RATE): int(s * RATE) + n].copy() for _, s in wins]

    clean = cut(x)
    sp = [spans(turns, who, s, length) for who, s in wins]
    lev = [speech_rms(w, p) for w, p in zip(clean, sp, strict=True)]
    others = {who: solo_track(x, turns, next(o for o, _, _ in turns if o != who)) for who, _ in wins}
    bed = music(x.size, rng)

    def add(noise: Callable[[int], np.ndarray], ratio_db: float) -> list[np.ndarray]:
        out = []
        for i, w in enumerate(clean):
            v = noise(i)
            v = v * lev[i] / 10 ** (ratio_db / 20) / math.sqrt(float(np.mean(np.square(v))))
            out.append(w + v)
        return out

    def talker(i: int) -> np.ndarray:
        o = others[wins[i][0]]
        s = (i * 7919 * FRAME) % (o.size - n)
        return o[s: s + n]

    def bed_at(i: int) -> np.ndarray:
        s = int(wins[i][1] * RATE)
        return bed[s: s + n]

    def scaled(dbfs: float) -> list[np.ndarray]:
        return [w * 10 ** (dbfs / 20) / math.sqrt(float(np.mean(np.square(w)))) for w in clean]

    return {
        "clean": clean,
        "reverb 0.3 s": cut(reverb(x, 0.3, rng)),
        "reverb 1.0 s": cut(reverb(x, 1.0, rng)),
        "music +10 dB": add(bed_at, 10),
        "music 0 dB": add(bed_at, 0),
        "noise 20 dB": add(lambda i: rng.standard_normal(n), 20),
        "noise 10 dB": add(lambda i: rng.standard_normal(n), 10),
        "noise 0 dB": add(lambda i: rng.standard_normal(n), 0),
        "talker -6 dB": add(talker, 6),
        "talker -14 dB": add(talker, 14),
        "telephone": cut(telephone(x)),
        "opus 6k": cut(codec(x, ["-c:a", "libopus", "-b:a", "6k", "-ar", "16000"], ".ogg")),
        "mp3 16k": cut(codec(x, ["-c:a", "libmp3lame", "-b:a", "16k", "-ar", "16000"], ".mp3")),
        "level -10 dBFS": scaled(-10),
        "level -35 dBFS": scaled(-35),
    }


def other_audio() -> list[tuple[Path, float]]:
    """Audio files in the environment's site-packages besides the sample, with their durations (s)."""
    found = []
    for p in sorted(Path(sysconfig.get_paths()["purelib"]).rglob("*")):
        if p.suffix.lower() in AUDIO_SUFFIXES and p.name != "sample.wav" and p.is_file():
            try:
                info = sf.info(str(p))
                found.append((p, info.frames / info.samplerate))
            except (RuntimeError, sf.LibsndfileError):
                found.append((p, float("nan")))
    return found


def wrapper_inputs(w: np.ndarray) -> np.ndarray:
    """speechmos's preparation: doubled until at least 9.01 s, one input per 1 s hop that its loop keeps."""
    a = w
    while a.size < INPUT_SAMPLES:
        a = np.concatenate([a, a])
    hops = int(math.floor(a.size / RATE) - 9.01) + 1
    return np.stack([a[i * RATE: i * RATE + INPUT_SAMPLES] for i in range(hops)
                     if a[i * RATE:].size >= INPUT_SAMPLES]).astype(np.float32)


def compare_wrapper(scorer: Dnsmos, conds: dict[str, list[np.ndarray]], names: list[str]) -> None:
    """OVRL of the scorer's one tiled input against the mean over speechmos's hops, per condition."""
    print("\none tiled inference per window (the scorer) vs speechmos's doubling + 1 s hops (OVRL, P.835 model):")
    print(f"{'condition':<16}{'tiled':>7}{'hops':>7}{'mean |d|':>9}{'max |d|':>8}{'hop sd':>7}")
    cost = {"tiled": 0.0, "hops": 0.0}
    count = {"tiled": 0, "hops": 0}
    for name in names:
        prepped = [normalise_level(w) for w in conds[name]]
        t0 = time.process_time()
        tiled = calibrate(scorer.raw(np.stack([np.resize(w, INPUT_SAMPLES) for w in prepped]).astype(np.float32)),
                          "dnsmos")[:, 2]
        cost["tiled"] += time.process_time() - t0
        count["tiled"] += len(prepped)
        hop_means, hop_sds = [], []
        for w in prepped:
            t0 = time.process_time()
            ov = calibrate(scorer.raw(wrapper_inputs(w)), "dnsmos")[:, 2]
            cost["hops"] += time.process_time() - t0
            count["hops"] += ov.size
            hop_means.append(ov.mean())
            hop_sds.append(ov.std())
        d = np.abs(tiled - np.array(hop_means))
        print(f"{name:<16}{tiled.mean():>7.2f}{np.mean(hop_means):>7.2f}{d.mean():>9.3f}{d.max():>8.3f}"
              f"{np.mean(hop_sds):>7.3f}")
    print(f"CPU per inference: tiled {1e3 * cost['tiled'] / count['tiled']:.0f} ms, hops "
          f"{1e3 * cost['hops'] / count['hops']:.0f} ms; inferences per 3.5 s window: 1 vs "
          f"{count['hops'] / count['tiled']:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hop", type=float, default=0.5, help="grid of window starts, seconds")
    ap.add_argument("--window", type=float, default=WINDOW_S, help="window length, seconds")
    for m, v in (("sig", 1.0), ("bak", 3.5), ("ovrl", 2.8), ("povrl", 3.2)):
        ap.add_argument(f"--min-{m}", type=float, default=v, help=f"floor of {m.upper()} in the pass-rate table")
    ap.add_argument("--no-wrapper", action="store_true", help="skip the comparison with speechmos's preparation")
    args = ap.parse_args()

    wav, rttm = sample_paths()
    x, sr = sf.read(str(wav), dtype="float64")
    assert sr == RATE and x.ndim == 1
    turns = read_turns(rttm)
    wins = windows(turns, x.size / RATE, args.hop, args.window)
    extra = other_audio()
    print(f"speech: {wav.name}, {x.size / RATE:.0f} s; {len(wins)} windows of {args.window} s "
          f"({', '.join(f'{s}: {sum(w == s for w, _ in wins)}' for s in sorted({w for w, _ in wins}))})")
    print(f"other audio in site-packages: {len(extra)} files, longest {max((d for _, d in extra), default=0):.2f} s "
          "(none is speech; not used)")
    rng = np.random.default_rng(0)
    conds = conditions(x, turns, wins, args.window, rng)
    sp = [spans(turns, who, s, args.window) for who, s in wins]

    scorer = Dnsmos(personalized=True, threads=1, batch_size=8)
    scorer.score([w.astype(np.float32) for w in conds["clean"]])  # warm-up: the first batches allocate
    res: dict[str, dict[str, np.ndarray]] = {}
    cpu: dict[str, float] = {}
    snr_cpu = 0.0
    print(f"\n{'condition':<16}{'SIG':>6}{'BAK':>6}{'OVRL':>6}{'min-max':>10}{'pOVRL':>7}{'min-max':>10}{'SNR dB':>8}"
          f"{'ms/win':>8}")
    for name, ws in conds.items():
        t0 = time.process_time()
        sc = scorer.score([w.astype(np.float32) for w in ws])
        cpu[name] = (time.process_time() - t0) / len(ws)
        t0 = time.process_time()
        snr = [measure(w[None, :], RATE, p).snr_db for w, p in zip(ws, sp, strict=True)]
        snr_cpu += time.process_time() - t0
        res[name] = {"sig": np.array([s.sig for s in sc]), "bak": np.array([s.bak for s in sc]),
                     "ovrl": np.array([s.ovrl for s in sc]), "povrl": np.array([s.povrl for s in sc]),
                     "snr": np.array(snr)}
        r = res[name]
        print(f"{name:<16}{r['sig'].mean():>6.2f}{r['bak'].mean():>6.2f}{r['ovrl'].mean():>6.2f}"
              f"{r['ovrl'].min():>5.2f}-{r['ovrl'].max():.2f}{r['povrl'].mean():>7.2f}"
              f"{r['povrl'].min():>5.2f}-{r['povrl'].max():.2f}{r['snr'].mean():>8.1f}{1e3 * cpu[name]:>8.0f}")
        sys.stdout.flush()

    print("\nclean above the condition? per measure: mean clean - mean condition, and the share of windows where "
          "clean is higher by more than 0.01")
    print(f"{'condition':<16}" + "".join(f"{m:>12}" for m in MEASURES))
    for name in conds:
        if name == "clean":
            continue
        cells = []
        for m in MEASURES:
            c, d = res["clean"][m], res[name][m]
            cells.append(f"{c.mean() - d.mean():+.2f} {np.mean(c - d > 0.01):>4.0%}")
        print(f"{name:<16}" + "".join(f"{c:>12}" for c in cells))
    print("(the level rows should read +0.00 0%: the scorer normalises level)")

    floors = {m: getattr(args, f"min_{m}") for m in MEASURES[:4]}
    print("\nshare of windows at or above each floor, and above all of them:")
    print(f"{'condition':<16}" + "".join(f"{f'{m}>={v:g}':>11}" for m, v in floors.items()) + f"{'all':>7}")
    for name in conds:
        ok = {m: res[name][m] >= v for m, v in floors.items()}
        every = np.logical_and.reduce(list(ok.values()))
        print(f"{name:<16}" + "".join(f"{np.mean(v):>11.0%}" for v in ok.values()) + f"{np.mean(every):>7.0%}")

    n_all = sum(len(ws) for ws in conds.values())
    dn = sum(cpu[k] * len(conds[k]) for k in conds) / n_all
    sn = snr_cpu / n_all
    print(f"\nbaseline ratio: DNSMOS (P.835 + personalized, 1 thread) {1e3 * dn:.0f} ms CPU per window vs the SNR "
          f"meter's {1e3 * sn:.1f} ms: {dn / sn:.0f}x")
    print("\nwithout the level normalisation (the model on the window as is), mean OVRL / pOVRL:")
    for name in ("clean", "level -10 dBFS", "level -35 dBFS"):
        inp = np.stack([np.resize(w, INPUT_SAMPLES) for w in conds[name]]).astype(np.float32)
        print(f"  {name:<16}{calibrate(scorer.raw(inp), 'dnsmos')[:, 2].mean():>6.2f}"
              f"{calibrate(scorer.raw(inp, 'pdnsmos'), 'pdnsmos')[:, 2].mean():>7.2f}")
    if args.window * RATE * 2 > INPUT_SAMPLES:
        print("\n(speechmos's preparation of a window over 4.5 s is one input, the scorer's: no comparison)")
    elif not args.no_wrapper:
        compare_wrapper(scorer, conds, ["clean", "reverb 1.0 s", "music 0 dB", "noise 10 dB", "talker -6 dB"])


if __name__ == "__main__":
    main()
