"""Live: classify the frames of a camera or a video as they come (headless half of the Live view).

``frames`` holds what moves between threads (``Frame``, the one-slot ``LatestFrame`` mailbox that drops
rather than queues, ``RateMeter``), ``predict`` classifies one frame with a model an ``InferenceEngine``
runs (top-k, optional Grad-CAM, region of interest, mirror), ``video`` reads files and cameras with PyAV
(the live extra), ``cli`` is ``python main.py live``. Nothing here imports Qt; this file imports nothing.
"""
