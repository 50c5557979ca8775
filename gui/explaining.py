"""The window's explain session: ``core.explain.ExplainSession`` with the views' settings (no Qt in here).

The inference thread answers the Feature maps and Grad-CAM tabs with an
``Explainer`` around its engine; the worker calls the question by its kind
(``layers``, ``capture``, ``filters``, ``gradcam``). The records are core's,
named here too for the views that draw them.
"""

from __future__ import annotations

from core.explain import MAX_CHANNELS, CamResult, ExplainSession, FeatureMaps, FilterTiles, LayerList

__all__ = ["VIEW_SCALE", "CamResult", "Explainer", "FeatureMaps", "FilterTiles", "LayerList"]  # records for the views

VIEW_SCALE = 2  # the photo as the model saw it, at twice its input resolution (sharper overlays)


class Explainer(ExplainSession):
    """The session the window uses: sharper views, and never a download (the weights flow asks first)."""

    def __init__(self, engine) -> None:
        super().__init__(engine, view_scale=VIEW_SCALE, download=False)

    def capture(self, model: str, weights: str, path: str, layer: str, *,
                max_channels: int = MAX_CHANNELS) -> FeatureMaps:
        """The Feature maps tab's question (its kind is ``capture``)."""
        return self.feature_maps(model, weights, path, layer, max_channels=max_channels)
