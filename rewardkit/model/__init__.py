"""Reward models: backbones, pooling, heads, saving, loading, scoring and export."""
