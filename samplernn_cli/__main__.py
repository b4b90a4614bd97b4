"""``python -m samplernn_cli``: the same command line as ``samplernn``."""

from samplernn_cli.cli.app import run

run()
