"""The live voice: a TorchScript file for nn~ in Max/MSP and Pure Data (``module``: the voice;
``tiers``, ``dsp``: its frame tiers, draws and filters; ``build``: from a checkpoint, and its
timing; ``host/``: a C++ host that calls it as nn~ does)."""
