"""mp4 writing, one way for every caller: imageio's ffmpeg plugin, checked up front.

imageio picks a writer by extension only among the plugins it can load: without imageio-ffmpeg
it hands "x.mp4" to another plugin (tifffile), which fails late with an unrelated error -- in
training, after the run has already spent its time. `require_ffmpeg` fails first, by name.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio


def require_ffmpeg() -> None:
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as e:
        raise RuntimeError(f"writing mp4 needs ffmpeg through imageio-ffmpeg (pip install imageio-ffmpeg): {e}") from None


def mp4_writer(path: str | Path, fps: float, macro_block_size: int = 2):
    """An imageio writer for H.264 mp4; frames are uint8 [H, W, 3] with sides divisible by macro_block_size."""
    require_ffmpeg()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return imageio.get_writer(path, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=macro_block_size,
                              ffmpeg_log_level="error")
