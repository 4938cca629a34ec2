"""The one place that makes realesrgan importable with current torchvision.

realesrgan 0.3.0 imports basicsr 1.4.2, which imports `torchvision.transforms.functional_tensor`;
torchvision renamed that module to `_functional_tensor` long ago. Registering the new module under
the old name in sys.modules before the import is the whole fix.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from core.errors import BackendError

_OLD_NAME = "torchvision.transforms.functional_tensor"
_NEW_NAME = "torchvision.transforms._functional_tensor"


def apply_torchvision_alias() -> None:
    """Register torchvision's `_functional_tensor` under its old public name (idempotent).

    Raises BackendError when torchvision is not installed or has neither module.
    """
    if _OLD_NAME in sys.modules:
        return
    try:
        module = importlib.import_module(_OLD_NAME)
    except ImportError:
        try:
            module = importlib.import_module(_NEW_NAME)
        except ImportError as exc:
            raise BackendError(
                f"torchvision has neither {_OLD_NAME} nor {_NEW_NAME}; the reference engine "
                f"(realesrgan) cannot import ({exc})"
            ) from exc
    sys.modules[_OLD_NAME] = module


def import_realesrganer() -> Any:
    """Return realesrgan's RealESRGANer class, applying the torchvision import fix first.

    Raises BackendError when realesrgan (or basicsr) is not installed or fails to import.
    """
    apply_torchvision_alias()
    try:
        from realesrgan import RealESRGANer
    except ImportError as exc:
        raise BackendError(
            f"the reference engine needs the realesrgan package (pip install realesrgan==0.3.0 "
            f"basicsr==1.4.2): {exc}"
        ) from exc
    return RealESRGANer
