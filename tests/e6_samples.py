"""The E6 results file the tests share (the original experiment's shape: T4 and L4 over
6, 15 and 30 s clips)."""

E6_SAMPLE = {
    "timestamp": "2025-08-14T10:22:31",
    "config": {"gpus": ["T4", "L4"], "model": "RealESRGAN_x4plus", "output": "810x1440", "fps": 30,
               "clips": {"6s": [3.0, 9.0], "15s": [3.0, 18.0], "30s": [3.0, 33.0]}},
    "pricing": {"T4": 0.000164, "L4": 0.000222},
    "results": [
        {"gpu": "T4", "clip": "6s", "frames": 180, "elapsed": 185.2, "status": "success"},
        {"gpu": "L4", "clip": "6s", "frames": 180, "elapsed": 120.4, "status": "success"},
        {"gpu": "T4", "clip": "15s", "frames": 450, "elapsed": 460.0, "status": "success"},
        {"gpu": "L4", "clip": "15s", "frames": 450, "elapsed": 290.0, "status": "success"},
        {"gpu": "T4", "clip": "30s", "frames": 900, "elapsed": 915.0, "status": "success"},
        {"gpu": "L4", "clip": "30s", "frames": 900, "elapsed": 570.0, "status": "success"},
        {"gpu": "L4", "clip": "30s", "frames": 900, "elapsed": None, "status": "failed",
         "error": "CUDA out of memory"},
    ],
    "comparisons": {},
}
"""A realistic E6 results file: L4 is cheaper on every clip; one failed L4 run."""
