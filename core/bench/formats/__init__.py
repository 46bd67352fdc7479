"""``bench formats``: rate and quality of ``.ngs`` against the formats artists use today (issue 5).

For each scene: PlayCanvas compressed ``.ply``, ``.spz`` and ``.sog`` written and decoded back to a
``.ply`` by splat-transform (:mod:`core.splat_transform`, skipped with the reason when npm/node is
unavailable), and ``.ngs`` at the settings of :data:`NGS_SETTINGS` (a curve, small to large). The
original and every decoded result are rendered with the same CPU renderer at the same held-out views
(:func:`core.pipeline.evaluation.evaluate_pair`) and, for scenes with a dataset (lego), compared with
its held-out images as well. Held-out views follow DESIGN §7's evaluation protocol: generated orbit
views at ``eval_size`` = 800 pixels on the long side (the preset's default), or the dataset's own
(lego: 400x400); every row records that size (``view_size``). Reports: :mod:`core.bench.formats.report`.

Timings: ``encode_s`` is splat-transform's process (Node start-up included, about 0.3 s) or the
whole NeuralGS compression plus writing the file; ``decode_s`` is file -> standard ``.ply`` on disk
for every method (``.ngs``: read, decode the MLPs, write the ``.ply``).

Resuming: every finished point leaves its result row beside its file
(``DIR/<scene>/.points/<method>.<setting>.json``) with a fingerprint of what produced it (the scene
file's name, size and CRC-32, the full configuration (with generated views, ``eval_size`` included:
another held-out view size is another point), the views it was trained and evaluated on,
splat-transform's version and arguments) and the size and CRC-32 of the file it wrote. A later run
into the same folder reuses a point whose fingerprint and file still match and recomputes the
others, so an interrupted benchmark (hours on a CPU) goes on where it stopped, and scenes can run in
separate processes into one folder before a last run writes the combined reports. ``--force``
recomputes everything. The fingerprint does not cover this project's own code (pipeline, ``.ngs``
writer): after changing it, run with ``--force`` or into a new folder. A method left out of a run
(``--only``, or splat-transform unavailable) still has its saved points in the reports, so every
run writes the whole folder's results. A splat-transform failure (a timeout: hours) is saved too and
not retried until ``--force``.

Repeatability: ``.ngs`` points are seeded (the same numbers every run on one machine); SOG is not
(splat-transform seeds its k-means with ``Math.random``), so its bytes and PSNR vary a little
between runs.

Modules: :mod:`~core.bench.formats.plan` (scenes, peers, settings), :mod:`~core.bench.formats.points`
(the resume cache), :mod:`~core.bench.formats.run` (running it), :mod:`~core.bench.formats.report`
(CSV, Markdown, plots).
"""
