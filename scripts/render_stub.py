"""Write ``src/chronos_distill/distillation/distillation_config.pyi``, the type stub that shows IDEs and type
checkers ``DistillationConfig``'s fields (``tests/test_every_setting_kept.py`` keeps it equal to this rendering).

    python scripts/render_stub.py
"""

from pathlib import Path

import chronos_distill.distillation.distillation_config as module

if __name__ == "__main__":
    path = Path(module.__file__).with_suffix(".pyi")
    path.write_text(module.render_stub())
    print(f"wrote {path}")
