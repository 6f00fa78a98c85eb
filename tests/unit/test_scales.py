"""The hand-made scales (scales.py) and the rewrites made from them (modifiers.py): the
tables' rules on their own, then the real parser, resources and model on sentences where a
wrong rule would show ("thrilled of", "astonished birthday", "a excellent")."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.recommend import Recommender, Resources
from models.recommend.grammar import Grammar
from models.recommend.scales import (
    FEELING_BY_WORD,
    OPINION_BY_WORD,
    degree_adverbs,
    feelings_toward,
    opinions_toward,
)

MODEL = Path(__file__).resolve().parents[2] / "models" / "weights"


def test_intensifying_a_feeling_only_climbs_its_own_scale() -> None:
    stronger = feelings_toward("anger", FEELING_BY_WORD["annoyed"], intensify=True)
    assert stronger and all(f.emotion == "anger" and f.intensity > 1 for f in stronger)
    assert "irritated" not in {f.word for f in stronger}  # the same strength is no stronger
    assert feelings_toward("sadness", FEELING_BY_WORD["devastated"], intensify=True) == []


def test_an_opinion_is_strengthened_never_reversed() -> None:
    toward_joy = {o.word for o in opinions_toward("joy", OPINION_BY_WORD["decent"], head_noun=None)}
    assert {"great", "excellent"} <= toward_joy
    assert "delicious" not in toward_joy  # only for food
    pastries = opinions_toward("joy", OPINION_BY_WORD["decent"], head_noun="pastries")
    assert "delicious" in {o.word for o in pastries}
    # "the screen is lovely" never becomes "the screen is infuriating".
    assert opinions_toward("anger", OPINION_BY_WORD["lovely"], head_noun="screen") == []


def test_degree_adverbs_go_with_the_properties_they_fit() -> None:
    assert "dangerously" in degree_adverbs("narrow", "fear")
    assert "eerily" in degree_adverbs("quiet", "fear")
    assert degree_adverbs("friendly", "anger") == ()  # "frustratingly friendly"
    assert degree_adverbs("slow", "joy") == ()  # "wonderfully slow"
    assert "surprisingly" in degree_adverbs("slow", "surprise")
    assert degree_adverbs("purple", "surprise") == ()  # not on the table: no guess


@pytest.fixture(scope="module")
def recommender() -> Recommender:
    from models.loading import load_scorer

    scorer = load_scorer(MODEL, device="cpu", precision="fp32", torch_threads=1)
    return Recommender(scorer, Resources.load(), grammar=Grammar.load())


def _rewrites(recommender: Recommender, text: str, target: str) -> list[str]:
    (found,) = recommender.suggest([text], None, [target])
    return [s.apply(text) for s in found]


def test_scale_rewrites_keep_the_complement_and_need_a_person(recommender: Recommender) -> None:
    texts = {
        "not_happy": ("I'm not happy with the service I received.", "anger"),
        "terrified": ("I'm terrified of speaking in front of large groups.", "joy"),
        "birthday": ("happy birthday Lena!! hope you have a great day", "surprise"),
        "trail": ("The hiking trail is narrow and there is no railing.", "fear"),
        "blender": ("This blender is a decent choice for small kitchens.", "joy"),
    }
    found = {k: _rewrites(recommender, *v) for k, v in texts.items()}
    # "not happy" -> an anger word that takes "with" ("angry with", never "outraged with").
    assert any(r.startswith("I'm ") and " with the service" in r for r in found["not_happy"])
    assert not any("outraged with" in r or "not " in r[:8] for r in found["not_happy"])
    # The joy words take no "of": "thrilled of speaking" is never offered.
    assert not any(" of speaking" in r and "terrified" not in r for r in found["terrified"])
    # "happy" there is a wish, not a feeling someone has.
    assert not any(r.split()[0] != "happy" for r in found["birthday"] if r.endswith("great day"))
    # A property takes the degree adverb of the target.
    assert "The hiking trail is dangerously narrow and there is no railing." in found["trail"]
    # The article stays right: "a great choice", never "a excellent choice".
    assert found["blender"] and not any(
        " a excellent" in r or " a amazing" in r for r in found["blender"]
    )


def test_where_the_model_is_saturated_the_scale_ranks_intensity(
    recommender: Recommender,
) -> None:
    texts = {
        # P(anger) 0.98 before, 0.94 after: the model cannot see "infuriated" is stronger.
        "hedged": ("I was a bit annoyed by the delay, but the team sorted it out.", "anger"),
        "kinda": ("I'm kinda nervous about tomorrow tbh", "fear"),
        "reported": ("Residents say they are frustrated by months of roadworks.", "anger"),
        "own_act": ("We're delighted to tell you that your ticket has been resolved.", "surprise"),
        "found_out": ("just found out the concert is sold out", "sadness"),
        "bare_verb": ("The lift in our building stopped between floors twice last week.", "fear"),
    }
    found = {k: _rewrites(recommender, *v) for k, v in texts.items()}
    assert any(r.startswith("I was infuriated by the delay") for r in found["hedged"])
    # Where a top-strength word keeps "by", it replaces the hedge, not "really".
    assert not any(r.startswith("I was really annoyed") for r in found["hedged"])
    assert not any("a bit" in r and "annoyed" not in r for r in found["hedged"])
    # Dropping the hedge needs a top-strength word: "kinda nervous" -> "worried" is no gain;
    # "terrified" takes no "about", so "really" replaces the hedge.
    assert not any(r.startswith("I'm worried") for r in found["kinda"])
    assert "I'm really nervous about tomorrow tbh" in found["kinda"]
    # What residents said is a fact of the report: their feeling is not swapped.
    assert not any("they are" in r and "frustrated" not in r for r in found["reported"])
    # Surprise at one's own act reads oddly ("We're amazed to tell you").
    assert not any(" to tell you" in r and "delighted" not in r for r in found["own_act"])
    # The adverb goes into the clause that says what happened.
    assert "just found out the concert is sadly sold out" in found["found_out"]
    # Before a verb without auxiliary only irritation reads well: not "worryingly stopped".
    assert not any(
        "worryingly stopped" in r or "alarmingly stopped" in r for r in found["bare_verb"]
    )


def test_no_stance_adverb_before_the_writers_own_words(recommender: Recommender) -> None:
    apology = "We apologise for the confusion caused by our last e-mail."
    disbelief = "I can't believe I left my passport at home again."
    assert not any(r.startswith("Sadly,") for r in _rewrites(recommender, apology, "sadness"))
    assert not any(r.startswith("Worryingly,") for r in _rewrites(recommender, disbelief, "fear"))
    # The same adverb still opens a plain statement of fact.
    cinema = "The last remaining cinema in the town will close in December."
    assert any("sadly" in r.lower() for r in _rewrites(recommender, cinema, "sadness"))


def test_more_of_the_same_where_the_scales_have_no_stronger_word(
    recommender: Recommender,
) -> None:
    texts = {
        "extreme": ("Fans were heartbroken when the club sold its star striker.", "sadness"),
        "comparative": ("Honestly, the new season is scarier than I expected.", "fear"),
        "exclamative": ("I still can't believe how quickly this year has gone.", "surprise"),
        "graded": ("I'm so furious that the landlord kept our deposit.", "anger"),
        "thanks": ("Thanks for your patience while we fixed the login problem.", "joy"),
        "thanks_full": ("Thank you so much for your patience.", "joy"),
        "random": ("got a random text from an unknown number asking for my address", "fear"),
        "strange": ("I heard a strange noise downstairs last night.", "joy"),
        "superlative": ("This is the best pizza I have ever eaten.", "joy"),
        "absolute": ("The manual was useless.", "anger"),
    }
    found = {k: _rewrites(recommender, *v) for k, v in texts.items()}
    assert any(
        r.startswith(("Fans were utterly heartbroken", "Fans were absolutely heartbroken"))
        for r in found["extreme"]
    )
    assert "Honestly, the new season is far scarier than I expected." in found["comparative"]
    assert (
        "I still can't believe how incredibly quickly this year has gone." in (found["exclamative"])
    )
    # A word the writer graded already takes no second degree word ("so absolutely furious").
    assert not any("so absolutely" in r or "so utterly" in r for r in found["graded"])
    assert "Thanks so much for your patience while we fixed the login problem." in found["thanks"]
    assert not any("so much so much" in r for r in found["thanks_full"])
    assert any(" a creepy text " in r for r in found["random"])
    # An odd thing turns threatening for fear, never pleasant for joy.
    assert all("strange noise" in r for r in found["strange"])
    assert "This is by far the best pizza I have ever eaten." in found["superlative"]
    # More of the same from the writer's own words ranks above a stance adverb restating it.
    assert found["absolute"][0] == "The manual was completely useless."


def test_scale_swaps_are_not_crowded_out_by_lexicon_swaps(recommender: Recommender) -> None:
    # Ten lexicon swaps of "angry" ("so brave", "so calm", ...) carry more model-free support
    # than the scale's words and, with gains capped, used to take every parse check; they
    # then failed the context fit, and the text got nothing.
    text = "I am so happy today, everything worked! I feel so angry."
    found = _rewrites(recommender, text, "joy")
    # The sentence that moves the text is edited, not the one already joyful.
    assert found and found[0].startswith("I am so happy today") and "angry" not in found[0]


def test_the_writers_own_tone_words_are_strengthened_in_place(recommender: Recommender) -> None:
    """idioms.py: tone verbs, apologies, set phrases, chat laughter, "actually"."""
    texts = {
        "set_phrase": ("Tired of paying for channels you never watch?", "anger"),
        "sorry_to_say": ("We're sorry to say that the shop on King Street will close.", "sadness"),
        "politeness": ("Sorry to bother you, but could you check my order?", "sadness"),
        "laughter": ("lol that was the worst meal I've had all year", "anger"),
        "measured_fall": ("Shares in the company fell 8% on Monday.", "sadness"),
        "plain_fall": ("The vase fell off the shelf.", "sadness"),
        "exclaimed": ("I got the promotion!", "surprise"),
        "apology": ("We apologise for the delay to your order.", "sadness"),
        "liking": ("I really like how the new app looks.", "joy"),
        "offer": ("Would you like to join us for dinner?", "joy"),
        "wish": ("Enjoy your meal!", "joy"),
        "annoys": ("The noise from next door annoys me every night.", "anger"),
    }
    found = {k: _rewrites(recommender, *v) for k, v in texts.items()}
    assert "Sick of paying for channels you never watch?" in found["set_phrase"]
    assert "We're sad to say that the shop on King Street will close." in found["sorry_to_say"]
    # "sorry to bother you" is politeness: "sad to bother you" is nonsense.
    assert not any(r.lower().startswith("sad to") for r in found["politeness"])
    assert "ugh that was the worst meal I've had all year" in found["laughter"]
    assert "Shares in the company slumped 8% on Monday." in found["measured_fall"]
    # Without an amount, "plunged" or "slumped" would say something else happened.
    assert not any("plunged" in r or "slumped" in r for r in found["plain_fall"])
    assert "I actually got the promotion!" in found["exclaimed"]
    assert any(
        r in found["apology"]
        for r in (
            "We sincerely apologise for the delay to your order.",
            "We deeply apologise for the delay to your order.",
        )
    )
    assert "I really love how the new app looks." in found["liking"]
    # An offer and a wish are not likings: "Would you love to", "Love your meal!".
    assert not any("love" in r.lower() for r in found["offer"] + found["wish"])
    assert "The noise from next door infuriates me every night." in found["annoys"]


def test_stance_adverbs_read_the_clause_they_land_on(recommender: Recommender) -> None:
    """Rules from the first held-out reading (session 8): the clause after "but", harm to
    people, the writer's emoji, and feelings swapped across emotions."""
    texts = {
        "concession": ("The coffee was decent, but the muffin was dry.", "anger"),
        "complaint_first": ("The charger is a bit slow, but it works with every phone.", "joy"),
        "harm": ("Three people were injured when a truck struck a bus shelter.", "anger"),
        "thing_died": ("My phone died halfway through the call with the bank.", "anger"),
        "eye_roll": ("we're out of milk again 🙄", "joy"),
        "nervous": ("tbh i'm kinda nervous about meeting his parents this weekend", "sadness"),
    }
    found = {k: _rewrites(recommender, *v) for k, v in texts.items()}
    # The stance goes with the complaint, not with the concession before "but".
    assert any(r.startswith("The coffee was decent, but ") for r in found["concession"])
    assert not any(r.startswith(("Annoyingly", "Frustratingly")) for r in found["concession"])
    assert any(", but fortunately it" in r or ", but thankfully it" in r
               for r in found["complaint_first"])  # fmt: skip
    assert not any(r.startswith(("Happily", "Thankfully")) for r in found["complaint_first"])
    # Irritation never trivialises harm to people; a phone dying is fair game.
    assert not any("nnoyingly" in r or "rustratingly" in r for r in found["harm"])
    assert any("nnoyingly" in r or "rustratingly" in r for r in found["thing_died"])
    # The eye-roll says the writer is not glad, whatever the model reads.
    assert not any(
        w in r.lower() for r in found["eye_roll"] for w in ("happily", "fortunately", "thankf")
    )
    # Across emotions a feeling moves at most one step stronger: "upset", not "heartbroken".
    assert not any("heartbroken" in r or "devastated" in r for r in found["nervous"])


def test_rules_from_the_second_held_out_reading(recommender: Recommender) -> None:
    texts = {
        "common_noun": ("City council voted to raise bus fares by 25 cents.", "anger"),
        "article": ("The Riverside Library will close on June 30.", "sadness"),
        "ability": ("This jump starter can restart a car battery 20 times.", "fear"),
        "got": ("fyi the concert got moved to next friday", "sadness"),
        "hedged_property": ("The pasta was okay and the service was a little slow.", "anger"),
        "layoffs": ("The factory announced that 300 workers will be laid off.", "anger"),
        "feeling_cold": ("I'm so tired of being cold.", "anger"),
        "opening_capital": ("Good news: we found your missing package!", "surprise"),
    }
    found = {k: _rewrites(recommender, *v) for k, v in texts.items()}
    # An opening common noun is lower-cased after the adverb; an article always is.
    assert not any(", City council" in r for r in found["common_noun"])
    assert not any(", The Riverside" in r for r in found["article"])
    # No stance adverb after a modal of ability, nor after "got".
    assert not any(" can alarmingly" in r or " can worryingly" in r for r in found["ability"])
    assert not any("got sadly" in r or "got unfortunately" in r for r in found["got"])
    # "a little" is a hedge, not a measure: the degree adverb replaces it.
    assert "The pasta was okay and the service was annoyingly slow." in found["hedged_property"]
    assert not any(r.startswith("Annoyingly, the pasta") for r in found["hedged_property"])
    assert not any("nnoyingly" in r or "rustratingly" in r for r in found["layoffs"])
    # "being cold" is how someone feels, not a property of a thing.
    assert not any("ly cold" in r for r in found["feeling_cold"])
    # A swapped opening word keeps its capital.
    assert all(r[:1].isupper() for r in found["opening_capital"])


def test_rules_from_the_third_held_out_reading(recommender: Recommender) -> None:
    texts = {
        "enough": ("The hotel room was fine, clean enough, and the staff were polite.", "joy"),
        "infinitive": ("The motor smells like burning plastic, and I'm scared to use it.", "anger"),
        "own_act": ("I've escalated your ticket to our senior team.", "joy"),
    }
    found = {k: _rewrites(recommender, *v) for k, v in texts.items()}
    assert not any("ly clean enough" in r for r in found["enough"])
    # Another feeling before an infinitive only about finding out: not "angry to use it".
    assert not any(" to use it" in r and "scared" not in r for r in found["infinitive"])
    # Relief about the writer's own act reads stilted, in mid-position or opening.
    assert not any(
        "thankfully" in r.lower() or "happily" in r.lower() or "fortunately" in r.lower()
        for r in found["own_act"]
    )


def test_mid_position_adverbs_only_where_readers_kept_them(recommender: Recommender) -> None:
    texts = {
        "joy": ("Your order has shipped and should arrive on Friday.", "joy"),
        "anger_after_aux": ("Egg prices have risen 30% since January.", "anger"),
        "anger_bare_verb": ("The app crashes every time I open the camera.", "anger"),
        "sadness": ("Our office will be closed over the Easter weekend.", "sadness"),
    }
    found = {k: _rewrites(recommender, *v) for k, v in texts.items()}
    assert not any("has fortunately" in r or "has thankfully" in r for r in found["joy"])
    assert not any("have annoyingly" in r or "have frustratingly" in r
                   for r in found["anger_after_aux"])  # fmt: skip
    assert "The app annoyingly crashes every time I open the camera." in found["anger_bare_verb"]
    assert "Our office will sadly be closed over the Easter weekend." in found["sadness"]


def test_chat_openers_and_rules_from_the_fourth_reading(recommender: Recommender) -> None:
    texts = {
        "chat": ("who ate the last slice of cake?", "anger"),
        "request": ("can u pick up the kids at 5?", "anger"),
        "question_to_reader": ("did u book the table yet?", "surprise"),
        "aside": ("the gym is closed tomorrow btw", "surprise"),
        "same_feeling": ("just got promoted!! 🎉", "joy"),
        "prose": ("Who ate the last slice of cake in the staff kitchen?", "anger"),
        "thing_secure": ("Lock the door to keep the house secure.", "fear"),
        "own_product": ("Our new backpack has a padded laptop sleeve.", "joy"),
        "own_life": ("My flight leaves at 6am tomorrow.", "fear"),
        "people": ("Commuters faced long delays after a signal failure.", "anger"),
    }
    found = {k: _rewrites(recommender, *v) for k, v in texts.items()}
    # An interjection opens a chat message with the target's feeling ...
    assert "ugh, who ate the last slice of cake?" in found["chat"]
    # ... but not a request, a question to the reader, an aside, a message that already
    # says the feeling, or edited prose.
    openers = ("ugh", "yay", "wow", "omg", "eek", "yikes", "sigh")
    for key in ("request", "question_to_reader", "aside", "same_feeling", "prose"):
        assert not any(r.lower().startswith(openers) for r in found[key]), (key, found[key])
    # A feeling word said of a thing describes the thing: no "keep the house insecure".
    assert not any("insecure" in r for r in found["thing_secure"])
    # No seller's delight in its own product, no observer's worry about the writer's life.
    assert not any(r.startswith("Happily") for r in found["own_product"])
    assert not any(r.startswith("Worryingly") for r in found["own_life"])
    # Commuters are people: no irritation adverb as the manner of what they did.
    assert not any("Commuters frustratingly" in r or "Commuters annoyingly" in r
                   for r in found["people"])  # fmt: skip


def test_the_writers_feeling_said_after_what_happens_to_them(recommender: Recommender) -> None:
    texts = {
        "rent": ("My landlord raised the rent again.", "anger"),
        "treatment": ("I start chemotherapy next week.", "fear"),
        "raffle": ("I won the office raffle this morning!", "surprise"),
        "reply": ("I have reset your password.", "joy"),
        "plans": ("I'm meeting my cousins in Rome next month.", "surprise"),
        "felt": ("I was a bit worried about the interview.", "fear"),
    }
    found = {k: _rewrites(recommender, *v) for k, v in texts.items()}
    assert any(r.startswith("My landlord raised the rent again, and I'm ") for r in found["rent"])
    assert any(r.endswith(", and I'm nervous.") or r.endswith(", and I'm scared.")
               for r in found["treatment"])  # fmt: skip
    # The clause goes before the writer's own "!".
    assert "I won the office raffle this morning, and I still can't believe it!" in found["raffle"]
    # Not in a reply to someone, not disbelief about plans, not after a feeling already said.
    for key in ("reply", "plans", "felt"):
        assert not any(", and I" in r or ", and it makes" in r for r in found[key]), found[key]


def test_stance_on_the_readers_affairs_and_on_feats(recommender: Recommender) -> None:
    texts = {
        "refund": ("Your refund of $30 has been processed.", "joy"),
        "sign_in": ("We noticed a new sign-in to your account from Oslo.", "fear"),
        "flight": ("Your flight to Oslo has been cancelled.", "sadness"),
        "feat": ("The underdogs beat the league leaders 3-0 on Saturday.", "surprise"),
        "not_a_feat": ("Police found a body in the river on Monday.", "surprise"),
    }
    found = {k: _rewrites(recommender, *v) for k, v in texts.items()}
    # No delight or alarm at the reader's own affairs; regret is fine there.
    assert not any(r.startswith(("Happily", "Thankfully", "Fortunately")) for r in found["refund"])
    assert not any(r.startswith(("Worryingly", "Alarmingly")) for r in found["sign_in"])
    assert any(r.startswith(("Sadly", "Unfortunately")) for r in found["flight"])
    # Surprise opens good news of a feat, never bad news.
    assert "Astonishingly, the underdogs beat the league leaders 3-0 on Saturday." in found["feat"]
    assert not any(r.startswith(("Astonishingly", "Remarkably")) for r in found["not_a_feat"])
