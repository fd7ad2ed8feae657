r"""Chapter 7: modality mapping $\vec v = M(\vec x)$ and contrastive alignment (CLIP).

Each modality gets its own encoder (:mod:`mmtutor.encoders`); training pulls the unit vectors of
matching pairs together and pushes the others apart, so that chapter 6's cosine search finds images
from sentences, digits from prompts, and (through text as a hub) images from sounds.

* :func:`multimodal_mapping`: the original write-up's ``M(x) = model(x)``, with its inputs checked;
* :func:`clip_loss`: the symmetric InfoNCE loss of CLIP (Radford et al., 2021); ``positives`` leaves the other
  true pairs of a batch out of the negatives; :func:`clip_loss_with_negatives` adds the batch's hard negative
  captions to the image-to-text side (NegCLIP);
* :class:`LogitScale`: the learnable temperature, stored as a log and clamped after each optimiser step as CLIP
  does (:func:`clamp_after_each_step`); :func:`param_groups`: weight decay on the weight matrices only;
* :class:`ContrastiveModel`: two towers and a temperature;
* metrics: :func:`recall_at_k`, :func:`target_ranks`, :func:`evaluate_retrieval` (with
  :func:`mmtutor.similarity.topk_search`; one or several right answers per query), :func:`label_recall_at_k`,
  :func:`ensemble_prompts`, :func:`zero_shot_classify`, :func:`hard_negative_accuracy`, :func:`modality_gap`.

The code is in three files: ``loss.py``, ``model.py`` and ``metrics.py``.
"""

from .loss import clip_loss, clip_loss_with_negatives
from .metrics import (
    ensemble_prompts,
    evaluate_retrieval,
    hard_negative_accuracy,
    label_recall_at_k,
    modality_gap,
    recall_at_k,
    target_ranks,
    zero_shot_classify,
)
from .model import ContrastiveModel, LogitScale, clamp_after_each_step, multimodal_mapping, param_groups

__all__ = [
    "ContrastiveModel", "LogitScale", "clamp_after_each_step", "clip_loss", "clip_loss_with_negatives",
    "ensemble_prompts", "evaluate_retrieval", "hard_negative_accuracy", "label_recall_at_k", "modality_gap",
    "multimodal_mapping", "param_groups", "recall_at_k", "target_ranks", "zero_shot_classify",
]
