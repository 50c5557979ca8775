"""Loading the model registry: the one place the window lists the zoo and the saved models.

``core.zoo`` imports torch and torchvision (seconds), so nothing the window
imports before its first paint may import it: this module is torch-free at
import time and its two loading functions import core on call.

``load_registry()`` runs on the inference thread (``gui.workers.registry_job`` on the window's ``EngineWorker``);
the window receives the ``Registry`` through ``InferenceClient.registryLoaded``
and hands it to its ``gui.catalog.ModelCatalog``. ``saved_model_specs()``
lists the saved bundles ("My models") again; the catalog calls it on the GUI
thread when the wizard saves a model or one is deleted (torch is in
``sys.modules`` by then, so it is cheap).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.errors import StudioError

log = logging.getLogger(__name__)

LOADING_TEXT = "Loading models…"
MY_MODELS = "My models"  # core.training.bundles.FAMILY, without importing torch before the first paint


@dataclass(frozen=True)
class Registry:
    specs: tuple  # core.zoo.ModelSpec, in display order (the zoo's, then the saved models)
    families: tuple[str, ...]
    devices: tuple[str, ...]  # device choices on this machine ("auto", "cpu", ...)

    def by_name(self) -> dict:
        return {spec.name: spec for spec in self.specs}


def load_registry() -> Registry:
    """Import the zoo and list it with the saved models (imports torch: never call this on the GUI thread)."""
    from core.inference import available_devices  # noqa: PLC0415 - lazy: imports torch; runs on the inference thread
    from core.zoo import FAMILIES, list_specs  # noqa: PLC0415 - lazy: imports torch and torchvision

    return Registry(tuple(list_specs()) + tuple(saved_model_specs()), tuple(FAMILIES) + (MY_MODELS,),
                    tuple(available_devices()))


def saved_model_specs() -> list:
    """Every saved bundle as a ``ModelSpec`` of family "My models" (unreadable ones are left out)."""
    from core.models import get_spec  # noqa: PLC0415 - lazy: imports torch; called once the registry has loaded it
    from core.training import list_bundles  # noqa: PLC0415 - as above

    specs = []
    for bundle in list_bundles():
        try:
            spec = get_spec(str(bundle.folder))
        except (StudioError, OSError) as exc:
            log.info("saved model %s left out of the picker: %s", bundle.name, exc)
            continue
        if spec is not None:
            specs.append(spec)
    return specs
