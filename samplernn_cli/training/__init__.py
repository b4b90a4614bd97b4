"""Training: opening a session for a new or continued run (:mod:`.session`, with the request
and result types in :mod:`.requests`), the loop (:mod:`.loop`) and its step (:mod:`.step`),
the run state (:mod:`.state`), the run folder and its side files (:mod:`.runfolder`,
:mod:`.artifacts`, :mod:`.live`) and torchrun (:mod:`.distributed`).

From Python: ``from samplernn_cli.training.session import train, resume``.
"""
