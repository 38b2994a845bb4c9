"""Colour science, bins, losses, metrics, optimisers, config checks, device meshes and sample grids: the layer every other part of colorjax builds on."""
