"""Generation: the sampling engine (:mod:`.engine`) over the step-by-step PyTorch sampler
(:mod:`.stepwise`) and the compiled CPU sampler (:mod:`.fast`, :mod:`.kernels`), what they
share (:mod:`.sampling`), and writing clips from a checkpoint (:mod:`.clips`).
"""
