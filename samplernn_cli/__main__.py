"""``python -m samplernn_cli``: the same command line as ``samplernn``."""

from samplernn_cli.cli import main

main()
