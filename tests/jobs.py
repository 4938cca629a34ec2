"""The one job builder of the tests: a job the 2-core CPU finishes in a moment."""

from __future__ import annotations

from typing import Any

from core.job import Job, Keyframe

USER = "u"
"""The user whose objects the `storage` fixture (conftest) holds."""
CLIP = "clip.mp4"
"""Where, under USER, that fixture puts the tiny clip."""
VIDEO_JOB_STAGES = ("fetch", "model_load", "decode", "upscale", "encode", "upload")
"""The stages every finished video job records (queue_wait and compile only where they happen)."""


def tiny_job(job_id: str = "j1", **changes: Any) -> Job:
    """The tiny clip trimmed to [0.5, 1.5) s (10 frames at 10 fps), a 24x16 crop that moves between
    two keyframes, upscaled to 36x24 by animevideov3 with random weights on the CPU, in batches of
    3, fidelity scored on 2 frames; output out/<job_id>.mp4. changes replace any field."""
    fields: dict[str, Any] = dict(
        job_id=job_id, user_id=USER, input_key=CLIP, output_key=f"out/{job_id}.mp4",
        keyframes=(Keyframe(0.0, 4, 4, 24, 16), Keyframe(2.0, 36, 28, 24, 16)),
        output_width=36, output_height=24, fps=10.0, trim_start=0.5, trim_end=1.5,
        model="animevideov3", engine="fast", weights="random", device="cpu",
        batch_size=3, fidelity_samples=2)
    fields.update(changes)
    return Job(**fields)
