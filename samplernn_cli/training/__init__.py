"""Training: opening a session for a new or continued run (:mod:`.session`, with the request
and result types in :mod:`.requests`), setting it up (:mod:`.setup`) and restoring it
(:mod:`.restore`), the loop (:mod:`.loop`) and the parts it runs: the step (:mod:`.step`),
validation and the best model (:mod:`.validation`), the learning-rate schedule
(:mod:`.plateau`), stopping (:mod:`.stopping`), reporting (:mod:`.reporting`,
:mod:`.tensorboard_log`), generation rounds (:mod:`.rounds`) and checkpoints
(:mod:`.saving`, :mod:`.retention`); the run state (:mod:`.state`), the weight average
(:mod:`.averaging`), the run folder and its files (:mod:`.runfolder`, :mod:`.artifacts`,
:mod:`.live`) and torchrun (:mod:`.distributed`).

From Python: ``from samplernn_cli.training.session import train, resume``.
"""
