"""``chronos-distill pretrain``: train a Chronos-2 model on the pretraining stream with chronos-forecasting's own
``Chronos2Trainer`` (its quantile loss), resumable, writing the output folder as ``distill`` does."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from pathlib import Path
from typing import Any

import torch
from chronos.chronos2 import Chronos2Model
from chronos.chronos2.trainer import Chronos2Trainer

from chronos_distill._version import __version__
from chronos_distill.chronos2.architecture import chronos2_config
from chronos_distill.chronos2.export import save_model_atomic
from chronos_distill.chronos2.model_card import pretrained_card, scrub_local_paths
from chronos_distill.chronos2.student import count_parameters
from chronos_distill.config import PretrainConfig
from chronos_distill.pretraining.stream import FIXED_ON_RESUME, RECORD_NAME, PretrainStream, real_series
from chronos_distill.training.arguments import training_arguments
from chronos_distill.training.restarts import restarts
from chronos_distill.training.run_folder import (
    CHECKPOINTS,
    check_output_folder,
    continues,
    is_main_process,
    model_folder,
    prepare_output_folder,
)
from chronos_distill.training.session import train_and_export
from chronos_distill.training.shared_paths import check_shared_folders

logger = logging.getLogger(__name__)


def pretrain(config: PretrainConfig | None = None, **options: Any) -> Path:
    """Train a Chronos-2 model from scratch on the pretraining mix; returns the model folder (``OUTPUT/model``)."""
    cfg = dataclasses.replace(config, **options) if config is not None else PretrainConfig(**options)
    output = Path(cfg.output).expanduser()
    checkpoints = output / CHECKPOINTS
    resuming = continues(output, cfg.resume)  # decided once, before anything is written
    if is_main_process():  # under torchrun only rank 0 checks, prepares and writes the output folder
        check_output_folder(output, cfg.to_dict(), resume=cfg.resume, overwrite=cfg.overwrite,
                            fixed_on_resume=FIXED_ON_RESUME)

    config_core = chronos2_config(
        d_model=cfg.d_model, num_layers=cfg.num_layers, num_heads=cfg.num_heads, d_kv=cfg.d_kv, d_ff=cfg.d_ff,
        context_length=cfg.context_length, max_output_patches=cfg.max_output_patches,
    )
    torch.manual_seed(cfg.seed)
    model = Chronos2Model(config_core)
    if cfg.init_from:
        from chronos_distill.chronos2.loading import load_teacher

        source = load_teacher(cfg.init_from)
        model.load_state_dict(source.state_dict())  # its parameters still train: load_state_dict copies values only
    stream = PretrainStream(cfg, real_series(cfg.real_data, cfg.real_holdout))
    if is_main_process():  # same folder rules as distill: never clobber a run by accident
        prepare_output_folder(output, cfg.to_dict(), resume=resuming, restart=cfg.resume == "auto" and not resuming)
    args = training_arguments(checkpoints, cfg, max_grad_norm=1.0)
    check_shared_folders({"output": output})  # every node must see what rank 0 writes there
    trainer = Chronos2Trainer(model=model, args=args, train_dataset=stream)

    def export(result, resume_from) -> None:
        record = scrub_local_paths({
            "chronos_distill_version": __version__,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "options": cfg.to_dict(),
            "parameters": count_parameters(model),
            "steps": trainer.state.global_step,
            "train_runtime_s": float(result.metrics.get("train_runtime", math.nan)),
            "device": str(args.device),
            "resumed_from": resume_from,
            "restarts": restarts(output),
            "final_loss": next((e["loss"] for e in reversed(trainer.state.log_history) if "loss" in e), None),
        })
        save_model_atomic(model, model_folder(output), dtype=getattr(torch, cfg.save_dtype),
                          text_files={"README.md": pretrained_card(record)}, json_files={RECORD_NAME: record})

    train_and_export(trainer, output, resume=resuming, verbose=cfg.verbose, export=export)
    return model_folder(output)
