"""Real, playable media for simulated jobs, rendered with the ffmpeg binary imageio-ffmpeg ships.

Rendering costs ~0.1 s per asset, far too slow to repeat per download under load, so each
(variant, size, seconds) is rendered once per process (and optionally once per disk cache dir)
and then served from memory. Only lavfi sources are used: fonts may be missing, so no drawtext.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Final

logger = logging.getLogger(__name__)

VARIANTS: Final = ("video", "thumbnail", "spritesheet")
CONTENT_TYPES: Final[dict[str, str]] = {
    "video": "video/mp4",
    "thumbnail": "image/jpeg",
    "spritesheet": "image/jpeg",
}
_EXTENSIONS: Final[dict[str, str]] = {"video": "mp4", "thumbnail": "jpg", "spritesheet": "jpg"}
# Bump when the ffmpeg recipes change so stale disk caches are not served.
_RECIPE_VERSION: Final = 1
_FPS: Final = 24
_SPRITE_COLUMNS: Final = 4
_FFMPEG_TIMEOUT_SECONDS: Final = 120


class MediaError(RuntimeError):
    """ffmpeg is missing or failed; the protocol answers such a download with a 5xx."""


def scaled_dimensions(size: str) -> tuple[int, int]:
    """The requested ``WxH`` divided by 8 and rounded to even numbers (yuv420p needs even)."""
    width_text, _, height_text = size.partition("x")
    width, height = int(width_text), int(height_text)

    def even(value: int) -> int:
        return max(2, round(value / 8 / 2) * 2)

    return even(width), even(height)


def _ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise MediaError("imageio-ffmpeg is not installed") from exc
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:  # pragma: no cover - only on a broken install
        raise MediaError(f"no ffmpeg binary: {exc}") from exc


def _recipe(variant: str, width: int, height: int, seconds: int, out: str) -> list[str]:
    source = f"testsrc2=size={width}x{height}:rate={_FPS}:duration={seconds}"
    base = ["-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", source]
    jpeg = ["-frames:v", "1", "-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", "4",
            "-f", "image2", out]
    if variant == "video":
        # Sora's clips carry sound, so the simulated one has a quiet tone track too.
        tone = f"sine=frequency=220:sample_rate=48000:duration={seconds}"
        return [*base, "-f", "lavfi", "-i", tone, "-af", "volume=0.1",
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "48k", "-movflags", "+faststart", "-shortest",
                "-f", "mp4", out]
    if variant == "thumbnail":
        return [*base, "-ss", str(min(1, seconds / 2)), *jpeg]
    rows = -(-seconds // _SPRITE_COLUMNS)
    return [*base, "-vf", f"fps=1,tile={_SPRITE_COLUMNS}x{rows}", *jpeg]


class MediaCache:
    """Rendered assets keyed by (variant, scaled size, seconds), each rendered at most once."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self._cache_dir = cache_dir
        self._memory: dict[tuple[str, int, int, int], bytes] = {}
        self._locks: dict[tuple[str, int, int, int], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, variant: str, size: str, seconds: int) -> bytes:
        if variant not in CONTENT_TYPES:
            raise ValueError(f"unknown variant {variant!r}")
        width, height = scaled_dimensions(size)
        key = (variant, width, height, seconds)
        cached = self._memory.get(key)
        if cached is not None:
            return cached
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        # Per-key lock: concurrent first downloads of one asset wait for a single render while
        # other assets render in parallel.
        with lock:
            cached = self._memory.get(key)
            if cached is None:
                cached = self._load_or_render(variant, width, height, seconds)
                self._memory[key] = cached
            return cached

    def prewarm(self, sizes: tuple[str, ...], seconds: tuple[int, ...]) -> None:
        for size in sizes:
            for duration in seconds:
                for variant in VARIANTS:
                    self.get(variant, size, duration)

    def _load_or_render(self, variant: str, width: int, height: int, seconds: int) -> bytes:
        name = f"v{_RECIPE_VERSION}-{variant}-{width}x{height}-{seconds}s.{_EXTENSIONS[variant]}"
        disk_path = self._cache_dir / name if self._cache_dir else None
        if disk_path is not None and disk_path.is_file():
            return disk_path.read_bytes()
        data = self._render(variant, width, height, seconds)
        if disk_path is not None:
            try:
                disk_path.parent.mkdir(parents=True, exist_ok=True)
                # Write-then-rename so another process never reads half a file.
                fd, tmp = tempfile.mkstemp(dir=disk_path.parent, prefix=".tmp-")
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, disk_path)
            except OSError:
                logger.warning("could not write simulator media cache %s", disk_path,
                               exc_info=True)
        return data

    def _render(self, variant: str, width: int, height: int, seconds: int) -> bytes:
        exe = _ffmpeg_exe()
        with tempfile.TemporaryDirectory(prefix="reelhouse-sim-") as tmp:
            # mp4 with +faststart needs a seekable output, so render to a file, not a pipe.
            out = str(Path(tmp) / f"out.{_EXTENSIONS[variant]}")
            command = [exe, *_recipe(variant, width, height, seconds, out)]
            try:
                result = subprocess.run(command, capture_output=True,
                                        timeout=_FFMPEG_TIMEOUT_SECONDS, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise MediaError(f"ffmpeg could not run: {exc}") from exc
            if result.returncode != 0 or not Path(out).is_file():
                stderr = result.stderr.decode(errors="replace").strip()[-500:]
                raise MediaError(f"ffmpeg failed ({result.returncode}): {stderr}")
            return Path(out).read_bytes()


_CACHES: dict[Path | None, MediaCache] = {}
_CACHES_GUARD = threading.Lock()


def media_cache(cache_dir: Path | None = None) -> MediaCache:
    """The process-wide cache for ``cache_dir``: servers started by tests share their renders."""
    key = cache_dir.resolve() if cache_dir is not None else None
    with _CACHES_GUARD:
        cache = _CACHES.get(key)
        if cache is None:
            cache = _CACHES[key] = MediaCache(key)
        return cache
