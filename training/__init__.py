"""Training of the ConvLSTM U-Net (ST-RainNet): model, data, losses, trainer, prediction.

Threads that find no work sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE`` unless
set by the user): workflow jobs share the cores, and spinning OpenMP threads of one job
starve the others (measured: a small training step 20x slower with 2 spinning threads on
an oversubscribed 2-core machine, no loss when idle). It must be set before torch loads.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
