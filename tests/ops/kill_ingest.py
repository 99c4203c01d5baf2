"""Run ``funnelgate ingest`` in this process and SIGKILL it at a chosen point (the atomic-ingest tests).

    python -m tests.ops.kill_ingest ENV_JSON CSV_DIR POINT

POINT is ``STAGE:WHEN`` for a progress stage of the ingest (WHEN: ``start``, ``mid`` or ``end``), or
``switch:before`` / ``switch:after`` around the one step that switches generations. Deterministic: the
process kills itself from inside, at exactly that point, with the signal a crash or an OOM kill sends.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from gateway.config import load_settings
from gateway.jobs import ingest
from gateway.stores.duckdb import generations as duck_generations
from gateway.stores.mongo import generations as mongo_generations


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    env, csv_dir, point = json.loads(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    stage, when = point.split(":")
    ingest.BATCH_USERS = 200  # several batches even for a small dataset: "mid" has somewhere to be

    def progress(name: str, done: int, total: int) -> None:
        if name != stage:
            return
        if (
            (when == "start" and done == 0)
            or (when == "end" and done == total)
            or (when == "mid" and 0 < done < total)
        ):
            die()

    if stage == "switch":
        switch_files = duck_generations.switch_files
        activate = mongo_generations.MongoBuild.activate

        def killed_switch(building: Path, live: Path) -> None:
            if when == "before":
                die()
            switch_files(building, live)
            die()

        async def killed_activate(self: Any) -> None:
            if when == "before":
                die()
            await activate(self)
            die()

        duck_generations.switch_files = killed_switch  # type: ignore[assignment]
        mongo_generations.MongoBuild.activate = killed_activate  # type: ignore[method-assign]

    settings = load_settings(env=env)
    asyncio.run(ingest.run_ingest(settings, csv_dir, progress=progress))
    print("finished without being killed")


if __name__ == "__main__":
    main()
