"""Material quality: the learned speech-quality score of references and target audio, and the picture
gates of target windows (sharpness, enlargement, head pose, burned-in text)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import StrictModel


class SpeechQualityConfig(StrictModel):
    """How speech quality is scored and the floors a window must reach. `dnsmos`: Microsoft's DNSMOS P.835
    (SIG: the speech itself, BAK: the background, OVRL: overall, on a 1-5 scale) and the personalized DNSMOS
    OVRL, which also drops when another voice talks under the speaker, run offline with onnxruntime on each
    window brought to one level (`backends/speech_quality.py`); `snr`: no learned score. Floors hold for one
    window length (the same speech reads higher over a longer window), hence separate ones for references
    (3.5 s) and targets (4.84 s)."""

    backend: Literal["snr", "dnsmos"] = Field(default="dnsmos", description="`dnsmos` (offline ONNX models from "
                                              "the speechmos wheel, or `model`) or `snr` (references keep the SNR "
                                              "estimate alone; targets carry no speech score).")
    model: str | None = Field(default=None, description="Folder holding dnsmos_models/sig_bak_ovr.onnx and "
                              "pdnsmos_models/sig_bak_ovr.onnx (default: the installed speechmos package's).")
    personalized: bool = Field(default=True, description="Also score the personalized DNSMOS OVRL (`povrl`, about "
                               "0.45 s of CPU per window on top of P.835's 0.45 s).")
    min_ovrl: float = Field(default=2.8, ge=1, le=5, description="Lowest DNSMOS OVRL kept.")
    min_sig: float = Field(default=1.0, ge=1, le=5, description="Lowest DNSMOS SIG (the speech signal) kept (1: off; "
                           "on real speech SIG catches nothing OVRL does not).")
    min_bak: float = Field(default=3.5, ge=1, le=5, description="Lowest DNSMOS BAK (background: noise, music) "
                           "kept.")
    min_povrl: float = Field(default=3.2, ge=1, le=5, description="Lowest personalized DNSMOS OVRL kept (with "
                             "`personalized`): the floor that catches a second talker under the speaker.")
    threads: int = Field(default=1, ge=1, description="onnxruntime threads per worker.")


class ReferenceSpeechQuality(SpeechQualityConfig):
    """The floors of reference windows (3.5 s). Measured on real speech degraded at known levels
    (benchmarks/speech_quality_real.py): clean, telephone-band and mp3 windows pass 88% of the time, a voice 20 dB
    over white noise 38%, reverb, a music bed 10 dB under the voice, noise at 10 dB and a second talker at -6 or
    -14 dB never (the SNR estimate passes the music bed at 16 dB and the talkers at 18-21 dB). Emilia keeps DNSMOS
    OVRL >= 3.0."""


class TargetSpeechQuality(SpeechQualityConfig):
    """The floors of a target's audio (4.84 s; the model generates it too): lower than a reference's, they keep
    clean, telephone, mp3 and 20 dB-noise windows and remove reverb, a music bed, noise at 10 dB and a second
    talker at -6 dB."""

    min_ovrl: float = Field(default=2.5, ge=1, le=5, description="Lowest DNSMOS OVRL kept.")
    min_bak: float = Field(default=3.0, ge=1, le=5, description="Lowest DNSMOS BAK (background: noise, music) "
                           "kept.")
    min_povrl: float = Field(default=3.0, ge=1, le=5, description="Lowest personalized DNSMOS OVRL kept (with "
                             "`personalized`).")


class PictureConfig(StrictModel):
    """The picture of each tracked target window, each measure a gate (`gates.TARGET_GATES`): the sharpness of
    the face, how much the output enlarges the source, the head's pose, and burned-in text inside the crop.
    Needs `targets.face.required`."""

    check: bool = Field(default=True, description="Measure and gate the picture of every tracked window.")
    min_sharpness: float = Field(default=150.0, ge=0, description="Lowest face sharpness kept: the variance of "
                                 "the Laplacian of the grey face box resized to 48 px, median over the window. On 17 "
                                 "real faces (benchmarks/picture_real.py) sharp ones read 397-2510, blurred by a "
                                 "Gaussian of sigma 1 px 176-1175, 3 px 17-132: 150 keeps sigma <= 1, removes >= 3.")
    max_upscale: float = Field(default=1.5, gt=0, description="Largest enlargement of the source by the output "
                               "kept: output side / crop side in source pixels (= output face / source face). 1.5 "
                               "needs a 155-px face for 512-px targets at margin 2.2 (TalkVid's face-size floor is "
                               "about 1.4x here; LatentSync's face box >= output is 1.0).")
    max_yaw_deg: float = Field(default=30.0, gt=0, le=90, description="Largest head turn left or right kept (degrees, "
                               "the window's 95th percentile, from the 68 landmarks by a 14-point PnP fit; the "
                               "estimate is good to ~15 degrees and reads low beyond ~40).")
    max_pitch_deg: float = Field(default=25.0, gt=0, le=90, description="Largest head tilt up or down kept (a "
                                 "generic head model leaves up to ~8 degrees of bias).")
    max_roll_deg: float = Field(default=20.0, gt=0, le=90, description="Largest in-plane head tilt kept (measured "
                                "within 2.6 degrees up to 30 on real photos; landmarks stay reliable to ~20).")
    text: Literal["ppocr", "off"] = Field(default="ppocr", description="Burned-in text detection: `ppocr`, "
                                          "PaddleOCR's PP-OCRv4 text detector (ONNX, from the rapidocr-onnxruntime "
                                          "wheel or `text_model`), then a rule that tells overlay lines from scene "
                                          "text (`analysis/overlay_text.py`); `off`.")
    text_model: str | None = Field(default=None, description="Local path of a PP-OCR detection .onnx model.")
    text_frames: int = Field(default=5, ge=1, le=121, description="Frames of the window searched for text "
                             "(evenly spaced, first and last included: 5 is one every 1.2 s, ~70 ms each on a core).")
    max_text_fraction: float = Field(default=0.0, ge=0, le=1, description="Largest share of the searched frames "
                                     "that may show overlay text (0: any frame with a subtitle rejects the "
                                     "window).")
