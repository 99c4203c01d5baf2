"""``funnelgate`` command line: parse arguments, build settings, then ``asyncio.run`` one coroutine.

One module per concern: ``parser`` (commands and flags), ``entry`` (dispatch and the exit codes),
``data`` (generate, ingest, embed, backup, restore, fingerprint), ``clients`` (query, replay, persist:
talking to a gateway or its manifest), ``access`` (API keys, tokens, credential files).
"""

from gateway.cli.entry import main

__all__ = ["main"]
