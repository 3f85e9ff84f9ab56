"""Run by tests/test_interruptions.py: ``chronos-distill ARGS`` (distill or pretrain) that sends itself SIGNAL
while step N runs, and with ``--again`` a second one while the checkpoint of that stop is being written, so the
test signals a run certainly mid-way, at a known step, with no timing race.

    python signalling_worker.py N SIGNAL [--again] distill ARGS...

Under ``torchrun``, only the rank named by ``SIGNAL_RANK`` (default: every rank) signals itself, and only in the
first start (``TORCHELASTIC_RESTART_COUNT`` 0).
"""

import os
import signal
import sys

import transformers
from transformers import TrainerCallback

from chronos_distill.cli import main

at_step, signum, argv = int(sys.argv[1]), getattr(signal, sys.argv[2]), sys.argv[3:]
again = argv[:1] == ["--again"]
argv = argv[1:] if again else argv


# under `torchrun --max-restarts N` only the first start signals: the restarted workers run the same command
signalled = (os.environ.get("SIGNAL_RANK") in (None, os.environ.get("RANK", "0"))
             and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0")


class SignalDuringStep(TrainerCallback):
    def on_step_begin(self, args, state, control, **kwargs):
        if signalled and state.global_step == at_step - 1:  # the step about to run is step N
            os.kill(os.getpid(), signum)


original_init = transformers.Trainer.__init__
original_rng = transformers.Trainer._save_rng_state


def init_with_signal(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    self.add_callback(SignalDuringStep())


def save_rng_then_signal(self, output_dir):  # half-way through the checkpoint: model and optimizer written
    original_rng(self, output_dir)
    if self.state.global_step == at_step:
        os.kill(os.getpid(), signum)


transformers.Trainer.__init__ = init_with_signal
if again:
    transformers.Trainer._save_rng_state = save_rng_then_signal
sys.exit(main(argv))
