"""The run folder and what a run writes there: its names and files (:mod:`.folder`), the
live settings file (:mod:`.live`), the data artifacts (:mod:`.artifacts`), checkpoints
(:mod:`.saving`) and which of them are kept (:mod:`.retention`), and TensorBoard
(:mod:`.tensorboard_log`)."""
