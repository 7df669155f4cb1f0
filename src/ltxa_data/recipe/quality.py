"""Material quality: the learned speech-quality score of references and target audio, and the picture
gates of target windows (sharpness, enlargement, head pose, burned-in text)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import StrictModel


class SpeechQualityConfig(StrictModel):
    """How speech quality is scored and the floors a window must reach. `dnsmos`: Microsoft's DNSMOS P.835
    (SIG: the speech itself, BAK: the background, OVRL: overall, on a 1-5 scale) and the personalized DNSMOS
    OVRL, which also penalises other talkers, run offline with onnxruntime on each window brought to one
    loudness (`backends/speech_quality.py`); `snr`: no learned score (references keep the SNR estimate
    alone)."""

    backend: Literal["snr", "dnsmos"] = Field(default="dnsmos", description="`dnsmos` (offline ONNX models from "
                                              "the speechmos wheel, or `model`) or `snr` (the SNR estimate only).")
    model: str | None = Field(default=None, description="Folder holding dnsmos_models/sig_bak_ovr.onnx and "
                              "pdnsmos_models/sig_bak_ovr.onnx (default: the installed speechmos package's).")
    personalized: bool = Field(default=True, description="Also score the personalized DNSMOS OVRL (`povrl`), "
                               "which drops when another voice talks under the speaker.")
    min_ovrl: float = Field(default=1.0, ge=1, le=5, description="Lowest DNSMOS OVRL kept.")
    min_sig: float = Field(default=1.0, ge=1, le=5, description="Lowest DNSMOS SIG (the speech signal) kept.")
    min_bak: float = Field(default=1.0, ge=1, le=5, description="Lowest DNSMOS BAK (background: noise, music) "
                           "kept.")
    min_povrl: float = Field(default=1.0, ge=1, le=5, description="Lowest personalized DNSMOS OVRL kept (with "
                             "`personalized`).")
    threads: int = Field(default=1, ge=1, description="onnxruntime threads per worker.")


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
    text_frames: int = Field(default=3, ge=1, le=121, description="Frames of the window searched for text "
                             "(evenly spaced, first and last included).")
    max_text_fraction: float = Field(default=0.0, ge=0, le=1, description="Largest share of the searched frames "
                                     "that may show overlay text (0: any frame with a subtitle rejects the "
                                     "window).")
