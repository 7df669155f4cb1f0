"""The sample corpus's speech: espeak-ng voices (`VOICES`, or an accent corpus's `ACCENT_VOICES`) saying
`SENTENCES`, and the plan of each clip (monologues, dialogs, shots and their framing), deterministic from
`CorpusConfig.seed`."""

from __future__ import annotations

import colorsys
import math
import re
import subprocess
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ..recipe import CorpusConfig
from .faces import PHOTO_FACE, Shot, framing, reframe
from .faces import look as look_of

VOICES: tuple[tuple[str, str], ...] = (
    ("spk0", "en-029+m2"),
    ("spk1", "en-gb-scotland+f4"),
    ("spk2", "en-us+Alex"),
    ("spk3", "en-us+Annie"),
    ("spk4", "en-us+f2 -p 65"),
    ("spk5", "en-us+m1 -p 20"),
    ("spk6", "en-us+m7"),
    ("spk7", "en+klatt"),
)


ACCENT_NAMES: dict[str, str] = {
    "en-us": "us", "en-gb-x-rp": "rp", "en-gb-scotland": "scotland", "en-029": "caribbean",
    "en-gb-x-gbcwmd": "midlands", "en-gb-x-gbclan": "lancaster", "en-us-nyc": "nyc", "en-gb": "gb", "en": "en",
}
"""Speaker-name stems of espeak-ng's English accents (`CorpusConfig.accents`): speaker k of accent `en-gb-x-rp`
is `rp_k`; another accent's stem is its name with each run of other characters than letters and digits as `_`."""


ACCENT_VOICES: tuple[str, ...] = (
    "f3 -p 70", "announcer -p 30", "anika -p 70", "iven3 -p 30", "steph2 -p 30", "Jacky -p 70", "f5 -p 30",
    "norbert -p 70", "shelby -p 30", "kaukovalta -p 50", "zac -p 70", "travis -p 70", "Andrea -p 50",
    "Nguyen -p 50", "grandma -p 70", "Marco -p 30", "f4 -p 30", "klatt2 -p 70", "Alicia -p 30", "sandro -p 30",
)
"""espeak-ng voice variants with pitch (`-p`) of an accent corpus's speakers, female and male in turn: speaker k of
the a-th accent speaks `<accent>+ACCENT_VOICES[a * speakers_per_accent + k]`. The accent barely moves a resemblyzer
embedding (one variant in 5 accents: 0.92-0.95 cosine), so no two speakers share a variant; chosen greedily from 34
variants x pitches 30/50/70 (excluding whispering, robotic and creaking ones) for the lowest worst cosine between
speakers, measured on 3 groups of 4 sentences each: at most 0.77 between any two, at least 0.93 within one. On the
built recipes/demo_accent.yaml corpus: one speaker's voices >= 0.915, two speakers' average linkage <= 0.774."""


SENTENCES: tuple[str, ...] = (
    "The train to the city leaves in ten minutes.",
    "Please remember to water the plants on Friday.",
    "We found a small cafe near the old harbour.",
    "My brother bought a new bicycle last summer.",
    "The meeting has been moved to Thursday afternoon.",
    "She painted the kitchen a bright shade of yellow.",
    "It rained all night and the river is very high.",
    "Could you pass me the salt and the pepper?",
    "The museum is closed on Mondays.",
    "I have never seen so many stars in the sky.",
    "Our neighbours are planning a garden party next week.",
    "The soup needs a little more salt.",
    "He forgot his umbrella at the library again.",
    "The children built a sandcastle on the beach.",
    "This road leads straight to the mountain village.",
    "I usually drink tea in the morning and coffee after lunch.",
    "The concert starts at eight o'clock sharp.",
    "Dogs are not allowed inside the bakery.",
    "We should leave early to avoid the traffic.",
    "The old clock in the hall stopped working years ago.",
    "She reads a new book almost every week.",
    "The bridge was painted red to match the sunset.",
    "My grandmother grows tomatoes and beans in her garden.",
    "The printer on the second floor is out of paper.",
    "Let me know when you arrive at the station.",
    "The lake freezes over every winter.",
    "They opened a small bookshop on the corner.",
    "I think the package will arrive tomorrow.",
    "The wind knocked over the sign outside the shop.",
    "He plays the piano for an hour every evening.",
    "Fresh bread smells wonderful in the morning.",
    "The team won the final match by a single point.",
    "We watched the boats come back into the harbour.",
    "The hotel room had a beautiful view of the sea.",
    "Please close the window before you go to bed.",
    "The history lesson was about ancient ships.",
    "A family of ducks lives near the pond.",
    "My phone battery always runs out too quickly.",
    "The farmer drove his tractor across the field.",
    "We need more chairs for the guests tonight.",
    "The mountain path is steep but the view is worth it.",
    "She sent a postcard from every city she visited.",
    "The cat likes to sleep on the warm windowsill.",
    "The market sells fruit and flowers on Saturdays.",
    "I lost my keys somewhere between home and work.",
    "The new bridge will open to traffic next spring.",
    "He fixed the broken fence with some old boards.",
    "Breakfast is served until half past ten.",
    "The students planted trees along the school yard.",
    "Snow covered the whole town by the morning.",
    "Turn left after the church and keep going straight.",
    "The lighthouse guided ships along the rocky coast.",
    "We ordered pizza because nobody wanted to cook.",
    "The doctor said I should walk more every day.",
    "Her favourite colour has always been deep green.",
    "The bus was late because of the heavy snow.",
    "Our teacher told us a story about a brave sailor.",
    "The orchestra practised the same piece all afternoon.",
    "I will call you back after dinner.",
    "The garden looks lovely after the rain.",
    "They spent the weekend camping by the river.",
    "The baker wakes up at four to make the bread.",
    "Nobody expected the film to be so funny.",
    "The tickets sold out in less than an hour.",
    "A strong coffee helps me think in the morning.",
    "The owl called softly from the top of the barn.",
    "We painted the fence white last weekend.",
    "The shop on the corner sells very good cheese.",
    "My sister is learning to speak Italian.",
    "The plane landed safely despite the strong wind.",
    "Please write your name at the top of the page.",
    "The kettle is boiling so the tea is almost ready.",
)


ESPEAK_SR = 22050


_FPS_CHOICES = (Fraction(24), Fraction(25), Fraction(30))


_NTSC = Fraction(30000, 1001)


_SAMPLE_RATES = (16000, 44100, 48000)


_SIZES = ((640, 360), (480, 480), (360, 640), (512, 384))


_SCAN = 12  # unused sentences tried (synthesized) when looking for one that fits the remaining room


_TURN_MIN_S = 5.5


QUALITY_KINDS = ("reverb", "music", "subtitle", "blur", "tiny", "turned")
"""Clips of a speaker's own face and voice whose material is spoiled one way (`CorpusConfig`): each should give
no target (and the sound-spoiled ones no reference)."""
TINY_SIZE, TINY_FACE = (456, 256), 0.3
"""A wide shot at the smallest size the scan accepts: the face is 0.3 of the frame's height (77 px)."""
TURN = 0.25
"""How far a turned head's features move sideways, in face widths (a three-quarter view)."""


def espeak(voice_args: str, text: str, rate: int, wav: Path) -> np.ndarray:
    """Synthesize one sentence; returns float32 mono at 22050 Hz, trimmed to the speech itself."""
    voice, *extra = voice_args.split()
    cmd = ["espeak-ng", "-v", voice, *extra, "-s", str(rate), "-w", str(wav), text]
    subprocess.run(cmd, check=True, capture_output=True)
    x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    if sr != ESPEAK_SR:
        x = resample_poly(x, ESPEAK_SR, sr, axis=0).astype(np.float32)
    return _trim(x[:, 0])


def _trim(x: np.ndarray, rel: float = 0.02) -> np.ndarray:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0:
        raise RuntimeError("espeak-ng produced silence")
    idx = np.flatnonzero(np.abs(x) > rel * peak)
    return np.ascontiguousarray(x[idx[0] : idx[-1] + 1] / peak)


class Speech:
    """Sentence supply per speaker (each speaker walks its own shuffle of the pool) with a synth cache."""

    def __init__(self, workdir: Path, rng: np.random.Generator, voices: dict[str, str]) -> None:
        self._wav = workdir / "say.wav"
        self._rng = rng
        self._voices = voices
        self._queues: dict[str, list[int]] = {s: [] for s in voices}
        self._cache: dict[tuple[str, int, int], np.ndarray] = {}

    def say(self, speaker: str, sentence: int, rate: int) -> np.ndarray:
        key = (speaker, sentence, rate)
        if key not in self._cache:
            self._cache[key] = espeak(self._voices[speaker], SENTENCES[sentence], rate, self._wav)
        return self._cache[key]

    def take(self, speaker: str, rate: int, max_s: float | None = None, min_s: float = 0.0,
             scan: int | None = _SCAN, longest: bool = False) -> tuple[str, np.ndarray] | None:
        """The next unused sentence of this speaker lasting min_s..max_s seconds (None: any), or None.

        With `longest`, the longest such sentence among those scanned instead of the next one.
        """
        q = self._queues[speaker]
        if not q:  # only after the whole pool is used up; sentences repeat from here on
            q.extend(int(i) for i in self._rng.permutation(len(SENTENCES)))
        best, best_d = -1, -1.0
        for j, idx in enumerate(q if scan is None else q[:scan]):
            d = len(self.say(speaker, idx, rate)) / ESPEAK_SR
            if d >= min_s and (max_s is None or d <= max_s) and d > best_d:
                best, best_d = j, d
                if not longest:
                    break
        if best < 0:
            return None
        idx = q.pop(best)
        return SENTENCES[idx], self.say(speaker, idx, rate)


@dataclass
class _Utt:
    speaker: str
    text: str
    start: float
    wave: np.ndarray  # 22050 Hz, trimmed, peak 1

    @property
    def end(self) -> float:
        return self.start + len(self.wave) / ESPEAK_SR


@dataclass
class Plan:
    rel: str
    kind: str
    identity: str
    speakers: list[str]
    fps: Fraction
    sample_rate: int
    channels: int
    width: int
    height: int
    gain_dbfs: float
    channel_gains: list[float]
    n_frames: int = 0
    utts: list[_Utt] = field(default_factory=list)
    shots: list[Shot] = field(default_factory=list)
    unheard: list[_Utt] = field(default_factory=list)  # what a dubbed face's mouth says
    rotation: int = 0

    @property
    def duration(self) -> Fraction:
        return Fraction(self.n_frames) / self.fps


def _rate(rng: np.random.Generator) -> int:
    return int(rng.integers(150, 176))


def _monologue(speech: Speech, rng: np.random.Generator, spk: str, length_s: float,
               bounds: tuple[float, float] | None) -> tuple[list[_Utt], float]:
    """Sentences with pauses filling about `length_s`; returns them and the clip length.

    With `bounds` (the configured length range) trailing silence is cut, and a clip that would end
    in a long silence gets one more sentence instead, so that every window stays dense with speech.
    Without, the clip keeps `length_s` and its speech is one or two sentences that nearly fill it.
    """
    rate = _rate(rng)
    t = float(rng.uniform(0.3, 0.6))
    utts: list[_Utt] = []
    while True:
        start = t + (float(rng.uniform(0.3, 0.8)) if utts else 0.0)
        room = length_s - 0.15 - start
        got = None
        if bounds is None and not utts:
            got = speech.take(spk, rate, room, room - 0.6, scan=None)
            got = got or speech.take(spk, rate, room, scan=None, longest=True)
        elif room > 0.8:
            got = speech.take(spk, rate, room)
        if got is None and bounds is not None and bounds[0] - t > 0.6:
            got = speech.take(spk, rate, bounds[1] - 0.15 - start)
        if got is None:
            if utts:
                break
            got = speech.take(spk, rate)
            assert got is not None
        utts.append(_Utt(spk, got[0], start, got[1]))
        t = utts[-1].end
    tail = float(rng.uniform(0.2, 0.45))
    if bounds is None:
        return utts, max(length_s, t + tail)
    return utts, max(t + tail, min(bounds[0], length_s))


def _dialog(speech: Speech, rng: np.random.Generator, a: str, b: str
            ) -> tuple[list[_Utt], list[float], float]:
    """Turns A, B, A, ... of 2-3 sentences, each turn at least 5.5 s; about 14-20 s in all."""
    target = float(rng.uniform(14.0, 20.0))
    n_turns = 3 if target >= 19.0 else 2
    lead = float(rng.uniform(0.3, 0.6))
    gaps = [float(rng.uniform(0.4, 0.8)) for _ in range(n_turns - 1)]
    turn_len = max(_TURN_MIN_S, (target - lead - sum(gaps)) / n_turns)
    rates = {a: _rate(rng), b: _rate(rng)}
    utts: list[_Utt] = []
    turn_starts: list[float] = []
    t = lead
    for k in range(n_turns):
        spk = a if k % 2 == 0 else b
        start = t + (gaps[k - 1] if k else 0.0)
        s, n = start, 0
        while n < 2 or s - start < _TURN_MIN_S or (s - start < turn_len - 0.8 and n < 3):
            rate = rates[spk]
            pause = float(rng.uniform(0.3, 0.6)) if n else 0.0
            got = None
            if n:
                need = turn_len - (s + pause - start)
                got = speech.take(spk, rate, max(need, 0.0) + 1.5, need)
                got = got or speech.take(spk, rate, max(need, 0.0) + 1.5, longest=True)
            got = got or speech.take(spk, rate)
            assert got is not None
            short_by = _TURN_MIN_S + 0.01 - (s + pause + len(got[1]) / ESPEAK_SR - start)
            if n and 0 < short_by <= 0.9 - pause:
                pause += short_by  # a slightly longer pause completes the turn instead of a third sentence
            utts.append(_Utt(spk, got[0], s + pause, got[1]))
            s, n = utts[-1].end, n + 1
        turn_starts.append(start)
        t = s
    return utts, turn_starts, t + float(rng.uniform(0.3, 0.6))


def accent_name(accent: str) -> str:
    """The speaker-name stem of an accent (`ACCENT_NAMES`)."""
    return ACCENT_NAMES.get(accent) or re.sub(r"[^a-z0-9]+", "_", accent.lower()).strip("_")


def corpus_speakers(cfg: CorpusConfig) -> dict[str, tuple[str, str | None]]:
    """Speaker name -> (espeak voice, accent): `VOICES[: cfg.speakers]` without accents, else
    `speakers_per_accent` of each accent (`ACCENT_VOICES`, names `<accent_name>_<k>`)."""
    if not cfg.accents:
        return {name: (voice, None) for name, voice in VOICES[: cfg.speakers]}
    n = len(cfg.accents) * cfg.speakers_per_accent
    stems = [accent_name(a) for a in cfg.accents]
    if len(set(stems)) != len(stems) or not all(stems):
        raise ValueError(f"corpus.accents {cfg.accents}: each accent once, with letters or digits in its name")
    if not 2 <= n <= len(ACCENT_VOICES):
        raise ValueError(f"corpus: {len(cfg.accents)} accents x {cfg.speakers_per_accent} speakers = {n}; an accent "
                         f"corpus has 2 to {len(ACCENT_VOICES)} speakers (as many distinct voices as measured)")
    return {f"{stem}_{k}": (f"{accent}+{ACCENT_VOICES[a * cfg.speakers_per_accent + k]}", accent)
            for a, (accent, stem) in enumerate(zip(cfg.accents, stems, strict=True))
            for k in range(cfg.speakers_per_accent)}


def _dialog_pairs(perm: list[str], accents: dict[str, str | None], count: int) -> list[tuple[str, str]]:
    """(main speaker, partner) of each dialog. Without accents a chain: `perm[k]` with the next one (a further one
    from the second round). With accents, disjoint pairs (until the speakers run out), each partner the next free
    speaker of another accent: a dialog links only its own two speakers into one split group."""
    n = len(perm)
    if not any(accents.values()):
        return [(perm[k % n], perm[(k + 1 + (k // n) % (n - 1)) % n]) for k in range(count)]
    out: list[tuple[str, str]] = []
    free: list[str] = []
    while len(out) < count:
        if len(free) < 2:
            free = list(perm)
        main = free.pop(0)
        j = next((i for i, s in enumerate(free) if accents[s] != accents[main]), 0)
        out.append((main, free.pop(j)))
    return out


def plan_corpus(cfg: CorpusConfig, speech: Speech, rng: np.random.Generator) -> list[Plan]:
    speakers = corpus_speakers(cfg)
    names = list(speakers)
    n_spk = len(names)
    perm = [names[int(i)] for i in rng.permutation(n_spk)]
    specs: list[tuple[str, str, str | None]] = [
        ("single", s, None) for s in names for _ in range(cfg.clips_per_speaker)
    ]
    accents = {s: accent for s, (_, accent) in speakers.items()}
    specs += [("dialog", a, b) for a, b in _dialog_pairs(perm, accents, cfg.two_speaker_clips)]
    d = cfg.two_speaker_clips
    specs += [("cut", perm[(d + k) % n_spk], None) for k in range(cfg.scene_cut_clips)]
    c = cfg.scene_cut_clips
    specs += [("short", perm[(d + c + k) % n_spk], None) for k in range(cfg.short_clips)]
    # The cases where the face on screen is not the voice's owner speaking, and a phone clip; each kind
    # starts at another speaker, and a shown face is another identity's.
    for j, (kind, count) in enumerate((("listener", cfg.listener_clips), ("still", cfg.still_clips),
                                       ("dub", cfg.dub_clips), ("lipsync", cfg.lipsync_clips),
                                       ("phone", cfg.phone_clips))):
        for k in range(count):
            main = perm[(j + k) % n_spk]
            specs.append((kind, main, perm[(j + k + 1 + n_spk // 2) % n_spk] if kind == "listener" else None))

    # The material-quality cases: a clean face and voice of the clip's own speaker, spoiled one way each.
    for j, kind in enumerate(QUALITY_KINDS):
        for k in range(getattr(cfg, "tiny_face_clips" if kind == "tiny" else f"{kind}_clips")):
            specs.append((kind, perm[(j + k + 2) % n_spk], None))

    n = len(specs)
    o_fps, o_sr, o_ch, o_size = (int(x) for x in rng.integers(0, 12, size=4))
    ntsc = int(rng.integers(0, n)) if n >= 12 else -1
    counters: dict[tuple[str, str], int] = {}
    prefix = {"single": "clip", "dialog": "dialog", "cut": "cut", "short": "short", "listener": "listener",
              "still": "still", "dub": "dub", "lipsync": "lipsync", "phone": "phone",
              **{q: q for q in QUALITY_KINDS}}
    rotations = (90, 270, 180)
    plans: list[Plan] = []
    for i, (kind, main, partner) in enumerate(specs):
        k = counters.get((main, kind), 0)
        counters[(main, kind)] = k + 1
        fps = _NTSC if i == ntsc else _FPS_CHOICES[(i + o_fps) % 3]
        sr = _SAMPLE_RATES[(i + i // 3 + o_sr) % 3]
        channels = 1 + (i + i // 4 + o_ch) % 2
        w, h = {"phone": (360, 640), "tiny": TINY_SIZE}.get(kind, _SIZES[(i + o_size) % 4])
        gains = [1.0, float(rng.uniform(0.7, 1.0))]
        if channels == 2 and rng.uniform() < 0.5:
            gains.reverse()
        plan = Plan(rel=f"{main}/{prefix[kind]}_{k:02d}.mp4", kind=kind, identity=main,
                     speakers=[main] if partner is None or kind != "dialog" else [main, partner], fps=fps,
                     sample_rate=sr,
                     channels=channels, width=w, height=h, gain_dbfs=float(rng.uniform(-9.0, -1.0)),
                     channel_gains=gains[:channels])
        look = look_of(names.index(main))
        fr = framing(rng, w, h, look, scale=TINY_FACE if kind == "tiny" else None)
        if kind == "turned":
            fr = replace(fr, turn=TURN)
        lo, hi = cfg.clip_seconds
        if kind == "dialog":
            assert partner is not None
            utts, turn_starts, dur = _dialog(speech, rng, main, partner)
            fr_b = framing(rng, w, h, look_of(names.index(partner)), hue=colorsys.rgb_to_hsv(
                *(x / 255 for x in fr.bg))[0] + float(rng.uniform(0.3, 0.7)))
            for j, ts in enumerate(turn_starts):
                who = plan.speakers[j % 2]
                # The shot changes on the frame on screen when the turn's first sentence starts.
                start_frame = 0 if j == 0 else math.floor(ts * fps + Fraction(1, 10**6))
                plan.shots.append(Shot(start_frame, who, fr if who == main else fr_b))
        else:
            if kind == "short":
                utts, dur = _monologue(speech, rng, main, float(rng.uniform(3.8, 4.5)), None)
            else:
                utts, dur = _monologue(speech, rng, main, float(rng.uniform(lo, hi)), (lo, hi))
            if kind == "listener":
                assert partner is not None
                shown = look_of(names.index(partner))
                plan.shots.append(Shot(0, partner, framing(rng, w, h, shown), "listener"))
            elif kind == "lipsync":  # a real face, not the voice's owner, lip-synced to the voice
                plan.shots.append(Shot(0, PHOTO_FACE, framing(rng, w, h, look), "voice"))
            else:
                plan.shots.append(Shot(0, main, fr, {"still": "still", "dub": "other"}.get(kind, "own")))
            if kind == "dub":
                plan.unheard, _ = _monologue(speech, rng, main, dur, (dur, dur))
            if kind == "phone":
                plan.rotation = rotations[k % len(rotations)]
        plan.n_frames = math.ceil(Fraction(dur).limit_denominator(10**6) * fps)
        if kind == "cut":
            cut = round(plan.n_frames * float(rng.uniform(0.42, 0.58)))
            plan.shots.append(Shot(cut, main, reframe(rng, w, h, look, fr)))
        plan.utts = utts
        plans.append(plan)
    return plans
