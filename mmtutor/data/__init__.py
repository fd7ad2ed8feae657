"""Every data set of the workbook: real ones read from installed packages, synthetic ones generated.

Nothing here downloads anything. Submodules:

* ``mmtutor.data.scenes``: seeded scenes of coloured shapes, rendered as small RGB images, with
  compositional captions and hard negatives (chapters 2, 3 and 5).
"""
