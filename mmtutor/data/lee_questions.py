r"""Questions about the 50 Lee news documents (:mod:`mmtutor.data.lee`), written for chapter 8's RAG experiment.

Each :class:`Question` names the document its answer comes from and quotes the words of that document that
hold the answer (``evidence``); the tests check that the evidence occurs in the document and every accepted
answer in the evidence, so no answer rests on memory. The documents are Australian and world news of August
2002: a small model has hardly seen them, which is what makes retrieval matter.

``answers`` lists the accepted answers as the document spells them (the first is the canonical one);
:func:`mmtutor.applications.rag.contains_answer` scores a reply as right when it contains one of them after
both are normalised (case, punctuation, "25 per cent" = "25 percent" = "25%", "2,300" = "2300").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    question: str
    answers: tuple[str, ...]  # accepted answers; the first is the canonical one
    doc: int  # index of the Lee document (0..49) the answer comes from
    evidence: str  # the words of that document that hold the answer, quoted exactly


def _q(question: str, answers: str | tuple[str, ...], doc: int, evidence: str) -> Question:
    return Question(question, (answers,) if isinstance(answers, str) else answers, doc, evidence)


#: The question set: each question with its accepted answers, the Lee document (0-49) that holds it and the
#: words of that document the answer comes from (``tests/test_application_data.py`` checks they occur there).
QUESTIONS: tuple[Question, ...] = (
    _q("Who did the Democrats' national executive appoint as interim leader?", ("Brian Greig", "Greig"), 0,
       "appointed little-known West Australian senator Brian Greig as interim leader"),
    _q("Who is the chief executive of AMP?", ("Paul Batchelor", "Batchelor"), 1,
       "Chief executive Paul Batchelor said"),
    _q("By how much did AMP's half-year profit sink?", "25 per cent", 1,
       "AMP's half-year profit sank 25 per cent"),
    _q("Which US assistant secretary of state for African affairs blamed Mugabe's policies for the threat of famine?",
       ("Walter Kansteiner", "Kansteiner"), 2,
       "Walter Kansteiner, the assistant secretary of state for African affairs"),
    _q("Which Islamist group is harbouring al-Qaida members in northern Iraq?", ("Ansar al-Islam",), 3,
       "the Ansar al-Islam (supporters of Islam) group is harbouring up to 150 al-Qaida members"),
    _q("Which White House spokesman said the US deplores the violation of Georgia's sovereignty?",
       ("Ari Fleischer", "Fleischer"), 4, "White House spokesman Ari Fleischer said"),
    _q("Which Christian college in Berwick is accused of discriminating against a gay student?",
       ("Hillcrest Christian College", "Hillcrest"), 5, "at Hillcrest Christian College in Berwick"),
    _q("How much did senior Saudi royals allegedly pay to Osama bin Laden's group and the Taliban?",
       "$560 million", 6, "paid at least $560 million to Osama bin Laden's terror group"),
    _q("Which Chinese province remained on high alert because of floods?", ("Hunan",), 8,
       "Hunan province remained on high alert"),
    _q("At which lake did the flood water level peak at just under 35m?", ("Dongting Lake", "Dongting"), 8,
       "On the flood frontline at Dongting Lake, the water level peaked at just under 35m"),
    _q("How much is the economic cooperation plan that Iraq and Russia are close to signing worth?",
       "$40 billion", 10, "Iraq and Russia are close to signing a $40 billion economic cooperation plan"),
    _q("Which Iraqi ambassador spoke about the economic cooperation plan with Russia?",
       ("Abbas Khalaf", "Khalaf"), 10, "The statement by Ambassador Abbas Khalaf"),
    _q("What is the codename of the corruption taskforce investigating the drug squad?", ("Ceja",), 12,
       "The corruption taskforce, codenamed Ceja"),
    _q("Which Queensland senator launched a last-minute bid to stop the Australian Democrats from splitting?",
       ("Andrew Bartlett", "Bartlett"), 13, "Queensland senator Andrew Bartlett has launched a last-minute bid"),
    _q("Who is the general secretary of the Victorian Independent Education Union?", ("Tony Keenan", "Keenan"), 14,
       "the union's general secretary, Tony Keenan"),
    _q("What does TMD, a registration a Beijing driver chose, stand for?", ("Theatre Missile Defence",), 16,
       "TMD, which stands for Theatre Missile Defence"),
    _q("How many people in seven southern African countries face death by starvation, according to the "
       "World Food Program?", ("14 million",), 17, "up to 14 million people in seven countries"),
    _q("What is the overall HIV infection rate in Malawi?", "19 per cent", 18,
       "The overall HIV infection rate in Malawi is 19 per cent"),
    _q("Which wealthy Johannesburg suburb hosts the UN environment summit?", ("Sandton",), 19,
       "Johannesburg's exclusive and formerly whites-only suburb of Sandton"),
    _q("Which sprawling township begins a few kilometres from Sandton?", ("Alexandra",), 19,
       "the sprawling Alexandra township"),
    _q("Which minister announced the changes to the work for the dole scheme?", ("Mal Brough", "Brough"), 21,
       "Federal Employment Services Minister Mal Brough"),
    _q("Which Attorney General called the biowarfare expert a person of interest in the anthrax investigation?",
       ("John Ashcroft", "Ashcroft"), 22, "Attorney General John Ashcroft for calling him a \"person of interest\""),
    _q("What is the name of the single mother sentenced to be stoned to death in Nigeria?",
       ("Amina Lawal", "Lawal"), 25, "Amina Lawal burst into tears"),
    _q("How many unregistered missile warheads were stored on a Canadian businessman's facility in New Mexico?",
       "2,300", 26, "How did 2,300 allegedly unregistered missile warheads"),
    _q("Who was arrested after missile warheads were found on his property in New Mexico?",
       ("David Hudak", "Hudak"), 26, "David Hudak, 41, was arrested"),
    _q("In which country were the peace talks between Sri Lanka and the Tamil Tiger rebels to be held?",
       ("Thailand",), 28, "peace talks with the insurgents scheduled for later that month in Thailand"),
    _q("Which Sri Lankan Minister for Rehabilitation promised to lift the ban on the Tamil Tigers?",
       ("Jayalath Jayawardena", "Jayawardena"), 28, "Minister for Rehabilitation Jayalath Jayawardena"),
    _q("Which minister said the Federal Government did not regret its actions in the Tampa crisis?",
       ("Joe Hockey", "Hockey"), 31, "Small Business Minister Joe Hockey said"),
    _q("Off which coast was a young humpback whale tangled in a shark net?", ("Gold Coast",), 33,
       "tangled in a shark net off the Gold Coast"),
    _q("Which former protection officer of Princess Diana did Prince William and Prince Harry feel betrayed by?",
       ("Ken Wharfe", "Wharfe"), 34, "the treachery of Ken Wharfe"),
    _q("Which South African President spoke at the opening ceremony of the Johannesburg Earth Summit?",
       ("Thabo Mbeki", "Mbeki"), 36, "South African President Thabo Mbeki, speaking at the opening ceremony"),
    _q("What was the name of the Irish light-bellied Brent goose tracked by researchers?", ("Kerry",), 40,
       "Kerry, an Irish light-bellied Brent goose"),
    _q("On which island was the tracked goose found?", ("Cornwallis Island", "Cornwallis"), 40,
       "on the remote Cornwallis Island"),
    _q("Which Russian Foreign Ministry spokesman defended Russia's economic ties with Iraq?",
       ("Boris Malakhov", "Malakhov"), 41, "Russian Foreign Ministry spokesman Boris Malakhov said"),
    _q("Who is the Norwegian ambassador whose phone calls were tapped during the Tampa stand-off?",
       ("Ove Thorsheim", "Thorsheim"), 44, "Norwegian ambassador Ove Thorsheim visited the freighter"),
    _q("Who was the captain of the Tampa?", ("Arne Rinnan", "Rinnan"), 44, "Tampa Captain Arne Rinnan"),
    _q("Which Basque political party did the Spanish parliament vote to ban?", ("Batasuna",), 45,
       "Batasuna, a political party that campaigns for an independent Basque state"),
    _q("Which river surged to a record high, flooding more of Dresden?", ("Elbe",), 46,
       "The river Elbe surged to an all-time record high"),
    _q("About how many jobs did the Commonwealth Bank plan to cut?", "1,000", 48,
       "it plans to cut about 1,000 jobs"),
    _q("Which Greens Senator intended to move a motion condemning the Government's refugee policy?",
       ("Kerry Nettle", "Nettle"), 49, "His Senate colleague Kerry Nettle intends to move a motion"),
)
