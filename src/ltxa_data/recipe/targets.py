"""The targets section: face tracking, the gates that decide a target window, and the crop."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import StrictModel
from .quality import PictureConfig, TargetSpeechQuality


class FaceConfig(StrictModel):
    """Face tracking in every target window: detect on every `sample_every`-th frame at reduced
    resolution, link the boxes by IoU, skip windows with no face or more than one (the next-best
    window takes the place of a skipped one), and give each sample its face masks."""

    required: bool = Field(default=True, description="Track the face of every target, whatever the crop: a window "
                           "with no face or several is skipped with the reason, and each sample carries its face "
                           "masks. `false` (only with `crop: center`) skips detection; samples have no masks.")
    mask_scale: float = Field(default=1.25, ge=1, le=3, description="The face masks cover the tracked face box grown "
                              "by this factor about its centre: detector boxes stop at the brows and the chin, and "
                              "hair and jaw also tell who someone is.")

    detector: Literal["dlib_hog", "dlib_cnn", "haar", "yunet"] = Field(
        default="dlib_hog", description="`dlib_hog`: dlib's HOG frontal-face detector (offline, weights from the "
        "package registry); `dlib_cnn`: dlib's CNN (MMOD) detector, slower on a CPU, finds more turned and small "
        "faces; `haar`: OpenCV's bundled frontal-face cascade (drawn faces only: unfit for real footage); `yunet`: "
        "OpenCV's "
        "FaceDetectorYN with `yunet_model`. Landmarks and face descriptors come from dlib whatever the detector.")
    dlib_models: str | None = Field(default=None, description="Folder holding dlib's "
                                    "shape_predictor_68_face_landmarks.dat, dlib_face_recognition_resnet_model_v1.dat "
                                    "and mmod_human_face_detector.dat (default: the face_recognition_models package).")
    upsample: int = Field(default=1, ge=0, le=3, description="dlib detectors: times the frame is upsampled before "
                          "detection (each finds faces half as large; 1 finds faces down to ~40 px at "
                          "`detect_side`).")
    yunet_model: str | None = Field(default=None, description="Local path of a YuNet .onnx model (for "
                                    "`detector: yunet`).")
    score_threshold: float = Field(default=0.7, ge=0, le=1, description="YuNet: minimum detection score.")
    min_neighbors: int = Field(default=3, ge=1, description="Haar: neighbours a candidate needs to be kept.")
    sample_every: int = Field(default=8, ge=1, description="Detect on every n-th frame of the window "
                              "(8: frames 0, 8, ..., 120).")
    detect_side: int = Field(default=320, ge=64, description="Frames are downscaled so their longer side is "
                             "at most this before detection.")
    min_face_ratio: float = Field(default=0.5, gt=0, le=1, description="A window needs exactly one face in at "
                                  "least this fraction of its sampled frames.")
    min_iou: float = Field(default=0.3, ge=0, le=1, description="A detection continues the track when its IoU "
                           "with the track's last box is at least this.")
    margin: float = Field(default=2.2, ge=1, description="Crop side = this x the tracked face's median side.")
    pad: Literal["black", "edge"] = Field(default="black", description="How a crop that leaves the frame is "
                                          "filled: black, or the frame's edge pixels repeated.")


DEFAULT_SYNC_SCORE = {"mouth_motion": 2.0, "syncnet": 3.0}
"""Default lowest active-speaker score per backend (syncnet: LatentSync's confidence threshold)."""


class ActiveSpeakerConfig(StrictModel):
    """The face on screen must be the one talking: each tracked window's mouth is scored against its speech
    at offsets of -search..search frames (SyncNet's confidence and offset, or the offline mouth-motion
    correlation); a window below `min_score`, or whose best offset is beyond `max_offset_frames`, is skipped
    with the numbers and the next-best window is tried."""

    check: bool = Field(default=True, description="Score every tracked window and skip those whose face does not "
                        "speak with the voice (listener shots, still pictures, voice-over, dubs).")
    backend: Literal["mouth_motion", "syncnet"] = Field(
        default="mouth_motion", description="`mouth_motion`: the landmark mouth opening against the speech "
        "envelope (offline); `syncnet`: SyncNet (syncnet_python's syncnet_v2.model) from `model`.")
    model: str | None = Field(default=None, description="Local checkpoint of a learned backend (syncnet: "
                              "syncnet_v2.model).")
    device: str = Field(default="cpu", description="Torch device of a learned backend.")
    min_score: float | None = Field(default=None, description="Lowest score kept (default: the backend's own: "
                                    "mouth_motion 2.0, the z-score of the lip-envelope correlation against the same "
                                    "mouth out of line with the speech; syncnet 3.0, SyncNet's confidence).")
    search_frames: int = Field(default=8, ge=0, le=25, description="Audio offsets searched each way, in 25 fps "
                               "frames.")
    max_offset_frames: int = Field(default=6, ge=0, le=25, description="A window whose best offset is further "
                                   "than this is skipped as out of sync (LatentSync: 6).")
    shift_audio: bool = Field(default=False, description="Shift the target's audio by its measured offset (when "
                              "within max_offset_frames and not 0), so that sound and mouth line up; the shift is "
                              "recorded per target (`audio_shift_s`).")
    min_activity: float = Field(default=0.01, ge=0, description="mouth_motion: a mouth whose opening varies less "
                                "than this (standard deviation, in eye-corner distances) is still and scores 0.")

    @property
    def threshold(self) -> float:
        """`min_score`, or the backend's own default."""
        return self.min_score if self.min_score is not None else DEFAULT_SYNC_SCORE[self.backend]

    @model_validator(mode="after")
    def _offsets(self) -> ActiveSpeakerConfig:
        if self.max_offset_frames > self.search_frames:
            raise ValueError("max_offset_frames must be at most search_frames")
        if self.backend == "syncnet" and self.model is None:
            raise ValueError("backend syncnet needs `model` (a local syncnet_v2.model)")
        return self


class FaceIdentityConfig(StrictModel):
    """Within one voice identity the faces must agree: each target gets a face descriptor (dlib's, averaged
    over `frames` frames of the window); targets whose face is further than `max_distance` from the identity's
    dominant face (a dub, a voice-over, two people merged by voice clustering) are skipped."""

    check: bool = Field(default=True, description="Describe every target's face and skip those that disagree "
                        "with their identity's dominant face.")
    frames: int = Field(default=1, ge=1, le=16, description="Frames of the window whose descriptors are averaged "
                        "(evenly spaced; 1: the middle frame; each costs ~75 ms on a CPU core).")
    max_distance: float = Field(default=0.6, gt=0, description="Descriptor distance (Euclidean) within which two "
                                "faces are one person (dlib: 0.6 on real faces).")
    min_dominant_share: float = Field(default=0.5, gt=0, le=1, description="The dominant face (the largest group "
                                      "of the identity's targets within max_distance of each other) must hold at "
                                      "least this share of them; otherwise every target of the identity is skipped "
                                      "as ambiguous.")


class TargetsConfig(StrictModel):
    size: int = Field(default=512, description="Output side in pixels (square, multiple of 32).")
    crop: Literal["center", "face"] = Field(default="center", description="`center`: the largest centred "
                                            "square; `face`: a steady square around the tracked face (see "
                                            "`face`), padded where it leaves the frame.")
    face: FaceConfig = FaceConfig()
    active_speaker: ActiveSpeakerConfig = ActiveSpeakerConfig()
    face_identity: FaceIdentityConfig = FaceIdentityConfig()
    picture: PictureConfig = PictureConfig()
    speech_quality: TargetSpeechQuality = Field(default=TargetSpeechQuality(), description="The learned "
                                                "speech-quality score of each target's audio (the model generates "
                                                "it too) and its floors; `snr`: not scored.")
    min_speech_ratio: float = Field(default=0.6, ge=0, le=1,
                                    description="Fraction of the window the speaker must be talking.")
    max_other_speech_s: float = Field(default=0.0, ge=0,
                                      description="Speech of any other speaker tolerated inside a window.")
    stride_frames: int = Field(default=25, ge=1, description="Candidate window step, in 25 fps frames.")
    max_per_video: int = Field(default=8, ge=1, description="At most this many targets per video.")

    @field_validator("size")
    @classmethod
    def _size(cls, v: int) -> int:
        if v <= 0 or v % 32:
            raise ValueError("size must be a positive multiple of 32")
        return v

    @model_validator(mode="after")
    def _faces_for_face_crops(self) -> TargetsConfig:
        if self.crop == "face" and not self.face.required:
            raise ValueError("crop: face needs face.required: true (the crop follows the tracked face)")
        on = [name for name, check in (("active_speaker.check", self.active_speaker.check),
                                       ("face_identity.check", self.face_identity.check),
                                       ("picture.check", self.picture.check)) if check]
        if not self.face.required and on:
            raise ValueError(f"{', '.join(on)} need face.required: true (they look at the tracked face); with "
                             "face.required: false set them to false too")
        return self
