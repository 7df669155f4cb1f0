"""ltxa_data: build audio-reference IC-LoRA training sets for LTX-2.3 from talking-head videos."""

__version__ = "0.1.0"
