"""Architecture bake-off: several architectures trained on the same split of one folder, then compared.

``plan`` decides what runs (models, strategies, epochs, the shared split, the output folder),
``jobs`` runs one model's training as an independent job, ``runner`` runs the jobs (here, or on Ray),
``stats`` and ``leaderboard`` turn the results into a ranking with confidence intervals and
paired significance tests.
"""
