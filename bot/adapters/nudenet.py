"""The local detector (MODBOT_DETECTOR=nudenet): NudeNet's ONNX model, run in worker threads.

NudeNet ships its 320n model inside the wheel and runs it on onnxruntime, so images never leave
the machine and nothing is downloaded at run time. It is the optional extra `modbot[nudenet]`;
this module imports it only when the detector is built, so the rest of modbot works without it.
The call (decode, inference) is kept apart from the parse (bot/core/nudenet_labels.py).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import io
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PIL import Image, PngImagePlugin
from PIL.JpegImagePlugin import jpeg_factory

from bot.adapters.images.budget import current as decode_budget
from bot.adapters.images.budget import prepare_within_budget
from bot.core.errors import ConfigError, DetectionFailed
from bot.core.model import Detection
from bot.core.nudenet_labels import SCORE_CUTOFF, to_labels

NUDENET = "nudenet"  # detections are stored per detector
INSTALL_HINT = (
    "MODBOT_DETECTOR=nudenet: the NudeNet model is not installed; run pip install 'modbot[nudenet]'"
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INPUT_SIDE = 320  # the 320n model's input; larger decodes only cost memory and time

# One image in (BGR pixels, as OpenCV decodes them), NudeNet's detection list out.
RawModel = Callable[[Any], Sequence[Mapping[str, Any]]]


def load_model() -> tuple[RawModel, str]:
    """NudeNet's detector over its bundled model, and a version naming both; ConfigError with
    the install line when the extra is missing."""
    try:
        from nudenet import NudeDetector  # noqa: PLC0415 - the optional extra, loaded on demand
    except ImportError:
        raise ConfigError([INSTALL_HINT]) from None
    detector = NudeDetector()  # one onnxruntime session, shared by the worker threads
    version = f"nudenet-{importlib.metadata.version('nudenet')}-320n"
    return detector.detect, version


class NudeNetDetector:
    """The Detector port over NudeNet: the image is checked and prepared as for Rekognition
    (within the decode memory budget), shrunk to the model's scale, and run in a small thread
    pool; at most `workers` images are decoded or inferred at once."""

    name = NUDENET

    def __init__(
        self,
        model: RawModel,
        model_version: str,
        *,
        workers: int = 1,
        cutoff: float = SCORE_CUTOFF,
    ) -> None:
        self._model = model
        self.model_version = model_version
        self._cutoff = cutoff
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="nudenet")
        self._slots = asyncio.Semaphore(workers)  # bytes wait here, not as decoded pixels

    @classmethod
    def installed(cls, *, workers: int = 1) -> NudeNetDetector:
        model, version = load_model()
        return cls(model, version, workers=workers)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def detect(self, image: bytes, min_confidence: float) -> Detection:
        prepared = await prepare_within_budget(image)
        budget = decode_budget()
        cost = min(budget.capacity, input_memory(prepared.format, prepared.width, prepared.height))
        async with self._slots:
            await budget.acquire(cost)
            try:
                loop = asyncio.get_running_loop()
                raw = await loop.run_in_executor(self._threads, self._infer, prepared.data)
            finally:
                budget.release(cost)
        return Detection(
            labels=to_labels(raw, min_confidence=min_confidence, cutoff=self._cutoff),
            model_version=self.model_version,
            min_confidence=min_confidence,
        )

    def _infer(self, data: bytes) -> Sequence[Mapping[str, Any]]:
        try:
            pixels = model_input(data)
            return self._model(pixels)
        except Exception as exc:  # onnxruntime and OpenCV raise their own types
            raise DetectionFailed("NudeNetError", f"{type(exc).__name__}: {exc}") from exc


def input_memory(fmt: str, width: int, height: int) -> int:
    """Bytes model_input holds at most: the decode (RGBA at worst) and its RGB copy.

    libjpeg decodes a JPEG at 1/2, 1/4 or 1/8 scale when that still leaves 640 px a side; a PNG
    is decoded whole before it is shrunk.
    """
    scale = 1
    while fmt == "JPEG" and scale < 8 and min(width, height) // (scale * 2) >= 2 * INPUT_SIDE:
        scale *= 2
    return (width // scale + 1) * (height // scale + 1) * 7


def model_input(data: bytes) -> Any:
    """A prepared JPEG or PNG as the BGR array OpenCV would decode, at most 640 px a side.

    Pillow decodes (it handles every mode prepare_image emits, grey and palette included, where
    NudeNet's own OpenCV path expects three or four channels); 640 keeps detail for the model's
    320 px input while bounding the array at about 1.2 MB.
    """
    import numpy as np  # noqa: PLC0415 - comes with the optional extra

    # The format's own plugin, as prepare_image opens it: Image.open would apply Pillow's global
    # pixel limit (89 MP) to a prepared image that is within Rekognition's 10,000 px sides.
    opener = PngImagePlugin.PngImageFile if data[:8] == PNG_SIGNATURE else jpeg_factory
    with opener(io.BytesIO(data)) as img:
        img.draft("RGB", (2 * INPUT_SIDE, 2 * INPUT_SIDE))  # JPEG: libjpeg scales while decoding
        rgb = img.convert("RGB")
    rgb.thumbnail((2 * INPUT_SIDE, 2 * INPUT_SIDE), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
