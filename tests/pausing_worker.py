"""Run by tests/test_interruptions.py: ``chronos-distill distill ARGS`` that, once checkpoint-N is on disk,
writes MARKER and waits to be killed, so the test kills a run that is certainly mid-way, with no timing race.

    python pausing_worker.py N MARKER distill ARGS...
"""

import sys
import time
from pathlib import Path

from transformers import TrainerCallback

import chronos_distill.distillation.trainer as trainer_module
from chronos_distill.cli import main

pause_at, marker, argv = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]


class PauseAfterCheckpoint(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == pause_at:  # on_save runs once the checkpoint is completely written
            marker.write_text(str(state.global_step))
            time.sleep(3600)  # the test kills the process here


original_init = trainer_module.DistillationTrainer.__init__


def init_with_pause(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    self.add_callback(PauseAfterCheckpoint())


trainer_module.DistillationTrainer.__init__ = init_with_pause
sys.exit(main(argv))
