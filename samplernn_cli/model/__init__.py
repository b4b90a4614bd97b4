"""SampleRNN and its numerics: the network (:mod:`.network`), the sample tier's first layer
as table sums with a compiled CPU backward pass (:mod:`.tables`), the sample MLP and the
cross-entropy as one autograd node for CPU training (:mod:`.head_loss`), the sample tier's
fitted linear prediction (:mod:`.prediction`), and the
straightforward formulations the tests and benchmarks compare them with (:mod:`.reference`).
"""

from samplernn_cli.model.network import (
    FrameTier,
    ModelState,
    SampleRNN,
    StepDraws,
    detach_state,
)

__all__ = ["FrameTier", "ModelState", "SampleRNN", "StepDraws", "detach_state"]
