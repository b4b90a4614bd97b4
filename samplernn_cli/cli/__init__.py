"""The command line: the only part of samplernn that knows the terminal (Typer and Rich).

:mod:`.app` is the Typer app and entry point, :mod:`.options` declares every option from the
settings' own rules, :mod:`.train`, :mod:`.generate` and :mod:`.inspection` hold the
commands, :mod:`.console` draws progress and tables, and :mod:`.boundary` turns exceptions
into exit codes and signals into stop requests.
"""
