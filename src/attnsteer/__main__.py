"""`python -m attnsteer ...`: the `attnsteer` command, so launchers that run modules work
(`torchrun --nproc-per-node N -m attnsteer eval ...`, `accelerate launch -m attnsteer profile ...`)."""

from __future__ import annotations

from attnsteer.cli.main import main

if __name__ == "__main__":
    main()
