"""The dataset doctor: a training folder seen through a network's eyes.

``embed`` computes (and caches per model and file content) each image's embedding, the input of the
model's classification head; ``findings`` turns embeddings into a 2-D map, likely label errors
(cross-validated linear classifier + confident learning), near-duplicates and outliers; ``report``
holds the result as plain data; ``fixes`` applies the user's reviewed fixes to the folder as moves
recorded in a journal (``FOLDER/.convnet-studio/fixes.jsonl``) with undo; ``cli`` is
``python main.py doctor``. Nothing here imports Qt. Modules are imported by name (this file imports
nothing, so ``core.data`` can use ``core.doctor.marks`` without a cycle).
"""
