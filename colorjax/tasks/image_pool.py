"""CycleGAN's image pool (Shrivastava et al.), kept as arrays in the TrainState.

The discriminators see a mix of the newest fakes and up to ``size`` earlier ones: while the
pool fills, each new fake is stored and passed on; once full, each new fake is passed on with
probability 1/2, otherwise a random stored fake is passed on and the new one takes its place.
A pure function of (pool, fakes, key): checkpointed, replicated and resumed with the state.
"""
import jax
import jax.numpy as jnp


def init(size, image_shape):
  """An empty pool for ``size`` images of ``image_shape`` (H, W, C)."""
  return {'images': jnp.zeros((size, *image_shape), jnp.float32),
          'count': jnp.zeros((), jnp.int32)}


def query(pool, fakes, key):
  """(the images D should see [N, H, W, C], the updated pool), the fakes taken in batch order."""
  size = pool['images'].shape[0]
  if size == 0:
    return fakes, pool

  def one(pool, inputs):
    fake, key = inputs
    swap_key, index_key = jax.random.split(key)
    filling = pool['count'] < size
    swap = ~filling & jax.random.bernoulli(swap_key, 0.5)
    index = jnp.where(filling, pool['count'], jax.random.randint(index_key, (), 0, size))
    stored = pool['images'][index]
    out = jnp.where(swap, stored, fake)
    images = pool['images'].at[index].set(jnp.where(filling | swap, fake, stored))
    return {'images': images, 'count': jnp.minimum(pool['count'] + 1, size)}, out

  pool, out = jax.lax.scan(one, pool, (fakes.astype(jnp.float32),
                                       jax.random.split(key, fakes.shape[0])))
  return out.astype(fakes.dtype), pool
