"""Generation: the sampling engine (:mod:`.engine`) over two samplers, the model's PyTorch
modules one sample at a time on any device (:mod:`.torch_sampler`) and compiled CPU kernels
(:mod:`.numba_sampler`, :mod:`.kernels`), what they share (:mod:`.sampling`), writing clips
from a checkpoint (:mod:`.clips`) and streaming them as they are generated (:mod:`.stream`).
"""
