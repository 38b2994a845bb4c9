"""Flax Linen modules only (NHWC; compute dtype from the config, params float32)."""
