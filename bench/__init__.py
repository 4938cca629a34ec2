"""Upscale GPU Bench: which GPU upscales your clips cheapest and fastest."""
