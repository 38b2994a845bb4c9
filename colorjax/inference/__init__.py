"""Colorizing images with a trained run or an exported file, from Python (``Colorizer``)."""
from colorjax.inference.colorizer import Colorizer

__all__ = ['Colorizer']
