"""The upscale worker: one job function used by every backend (local processes and Modal)."""
