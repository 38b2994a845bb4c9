"""colorjax's experiment configs: ``default`` (the fields every run reads) and one module per
family, loaded by path (``--config=configs/unet.py:demo``) or imported (``configs.unet``)."""
