"""colorjax: automatic image colorization in JAX/Flax, built for accelerator throughput.

Importing this package (or colorjax.core.color, .models, .tasks, .train) never imports TensorFlow;
only colorjax.data does, for tf.data.
"""
__version__ = '0.1.0'
