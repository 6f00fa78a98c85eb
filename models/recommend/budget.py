"""Per-event limits and bars of the recommendation work (a plain value: settings map onto it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """Per-event limits (they bound the extra model rows one event may cost) and the bars a
    rewrite must clear to be suggested at all: fewer, better suggestions win."""

    candidates: int = 32  # rewritten sentences rescored per event (call 2): the cost bound
    max_positions: int = 4  # words of the text that get candidates
    max_suggestions: int = 5  # suggestions returned per event
    occlusion_words: int = 40  # words occluded per event (call 1)
    attribution_top_k: int = 3  # spans per attributed label
    parse_checks: int = 10  # best-gaining rewrites per event parsed again (grammar)
    min_gain: float = 0.01  # least rise of the whole text's P(target)
    # Least rise of the whole text's log-odds of the target: it also sees intensification
    # of an emotion the text already has (P 0.95 -> 0.99 is +1.6 in log-odds).
    min_logit_gain: float = 0.3
    saturated: float = 0.97  # P(target) past which an intensification need only not lower it
    saturation_slack: float = 0.005  # ... by more than this
    # A stronger word of the same feeling from the hand-made scales ("a bit annoyed" ->
    # "infuriated") where the model is saturated and cannot rank intensity (0.98 -> 0.94):
    # the scale decides, the model need only still read the target clearly.
    min_intensified: float = 0.9
    min_feeling_fit: float = 0.5  # ... of one feeling swapped for another (angry -> happy)
    min_fit: float = 0.6  # least context fit of a word swap (context_fit.Fit.span)
    min_validation: float = 0.93  # least Zhou validation score (rest of the sentence kept)
    require_support: bool = True  # lexicon/VADER must agree with the model (word swaps)
    support_weight: float = 0.1  # score = gain + w_s x support + w_f x fit
    fit_weight: float = 0.3
    adverb_weight: float = 0.3  # a sentence adverb's gain counts this much in the ranking
    inserted_adverb_weight: float = 0.8  # ... an adverb inserted before the main verb
    min_affect: float = 0.3  # affect a word needs to be changed (logit drop/lexicon/VADER/4)
