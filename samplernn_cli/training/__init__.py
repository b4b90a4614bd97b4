"""Training: opening a session for a new or continued run (:mod:`.session`, with the request
and result types in :mod:`.requests`), starting it (:mod:`.startup`: set-up, resume,
fine-tuning), the loop (:mod:`.loop`) and the parts it runs: the step (:mod:`.step`),
validation and the best model (:mod:`.validation`), the learning-rate schedule and stopping
(:mod:`.schedule`), reporting (:mod:`.reporting`) and generation rounds (:mod:`.rounds`);
what a session works with and what changes as it trains (:mod:`.state`: the session, the run
state, the weight average) and torchrun (:mod:`.distributed`). The run folder's files
(names, checkpoints and their retention, live settings, artifacts, TensorBoard) are
:mod:`samplernn_cli.run`'s.

From Python: ``from samplernn_cli.training.session import train, resume``.
"""
