"""Fresh Chronos-2 configs, for teachers built from scratch (the demo, tests, pretraining)."""

from __future__ import annotations

from chronos.chronos2.config import Chronos2CoreConfig

#: The 21 quantile levels of amazon/chronos-2.
CHRONOS2_QUANTILES = [0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
                      0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99]


def chronos2_config(
    *,
    d_model: int = 512,
    num_layers: int = 6,
    num_heads: int = 8,
    d_kv: int = 64,
    d_ff: int = 2048,
    context_length: int = 2048,
    patch_size: int = 16,
    max_output_patches: int = 64,
    quantiles: list[float] | None = None,
    dropout_rate: float = 0.1,
) -> Chronos2CoreConfig:
    """A ``Chronos2CoreConfig`` with Chronos-2's forecasting setup ([REG] token, arcsinh, 21 quantiles)."""
    return Chronos2CoreConfig(
        d_model=d_model,
        d_kv=d_kv,
        d_ff=d_ff,
        num_layers=num_layers,
        num_heads=num_heads,
        dropout_rate=dropout_rate,
        feed_forward_proj="relu",
        rope_theta=10000.0,
        architectures=["Chronos2Model"],
        chronos_config={
            "context_length": context_length,
            "input_patch_size": patch_size,
            "input_patch_stride": patch_size,
            "output_patch_size": patch_size,
            "quantiles": list(quantiles or CHRONOS2_QUANTILES),
            "use_reg_token": True,
            "use_arcsinh": True,
            "max_output_patches": max_output_patches,
        },
    )
