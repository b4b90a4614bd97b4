"""samplernn: train SampleRNN on your own audio and generate new audio from it.

The package is a core (model, quantizer, data, training, generation, checkpoints) that never
touches the terminal, plus a thin Typer command line in :mod:`samplernn_cli.cli`.
Importing this package does not import torch; the submodules that need it do.
"""

__version__ = "0.2.0"
