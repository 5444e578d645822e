"""Own words on the console, through the real service, storage and export: what a person types in their
own way reaches the review, the stored report and the staff export; refusals are not answers."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.channels.console.chat import run_console
from bot.cli import main
from bot.config import Config

STORY = "CANARY-WELCOME a man grabbed my hijab at the bus stop and called me a terrorist"

# A person who never learns the bot's words: the story typed at the welcome, words everywhere, numbers
# one per message at a pick-all question, refusals at typed questions.
LINES = [
    STORY,  # at the welcome: kept, then the safety check
    "nope, I'm ok now",
    "I was the one it happened to",
    "he pulled it really hard and laughed",
    "nah",  # "Is there more?": ends the story, is not part of it
    "1",  # verbal abuse: ticked, the question stays
    "2",  # physical attack: ticked
    "done",
    "because I'm Muslim",
    "yesterday evening",  # date and part of day: no time question
    "I'd rather not say",  # where: a skip
    "its the first time",
    "nah",  # who did it: a skip
    "no idea who he was",
    "i didnt see his face",
    "not hurt just shaken",
    "no",
    "people on the bus saw",
    "no photos sorry",
    "no thanks",
    "no thanks, don't contact me",
    "only the police",
    "yes send it",
]


def test_a_person_in_their_own_words_is_understood_end_to_end(config: Config, config_path: Path) -> None:
    out = io.StringIO()
    typed = io.StringIO("".join(f"{line}\n" for line in LINES))
    code = asyncio.run(run_console(config, typed, out, chat_id="own"))
    screen = out.getvalue()
    assert code == 0
    assert screen.count("I've added that to what happened.") == 1
    welcome_reply = screen.split(f"> {STORY}")[1].split("> ")[0]
    assert "I've added that to what happened." in welcome_reply and "Is it happening now?" in welcome_reply
    why_ticks = screen.split("> 2\n")[1].split("> ")[0]
    assert "1. Verbal abuse or threats \u2713" in why_ticks and "2. Physical attack \u2713" in why_ticks
    assert "What time of day" not in screen
    review = screen.split("Here is your report")[1].split("> ")[0]
    assert "Your words: CANARY-WELCOME a man grabbed my hijab" in review
    assert "Why: Religion or belief" in review
    assert "Shared with: Police" in review
    assert "We have your report" in screen

    target = config_path.parent / "export.jsonl"
    assert main(["--config", str(config_path), "export", "--format", "jsonl", "--out", str(target)]) == 0
    [report] = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert report["description"] == f"{STORY}\n\nhe pulled it really hard and laughed"
    assert report["role"] == "victim"
    assert report["incident_types"] == ["verbal", "physical"]
    assert report["motivations"] == ["religion"]
    yesterday = (datetime.now(ZoneInfo("Europe/London")).date() - timedelta(days=1)).isoformat()
    assert report["occurred_on"] == yesterday and report["occurred_at_text"] == "yesterday evening"
    assert report["location"]["text"] is None
    assert report["repeat"] == "first"
    assert report["offender"] == "known=no; recognise=no"
    assert report["witnesses"] == "yes"
    assert report["anonymous"] is True and report["contact"] is None
    assert report["share_with"] == ["police"]
    said_in = [t["text"] for t in report["transcript"] if t["direction"] == "in"]
    assert said_in[1] == STORY  # the transcript keeps it too, in order


# Short answers that say more, on the console: the details stay with the answers, every answer is at the
# review, and the message after sending is one short message.
DETAILS = [
    "hi",
    "no",
    "1",
    "a man shouted at me on the bus",
    "done",
    "1",
    "done",
    "race",
    "done",
    "yesterday evening",
    "High Street",
    "yes, twice before",
    "a tall man in a red coat",
    "no",  # do you know who they are
    "no he had a mask on",  # would you know them again
    "no",
    "no",
    "yes a lady saw it",
    "no",
    "no",
    "no thanks, don't contact me",
    "send it to the police",
    "send",
]


def test_short_answers_that_say_more_reach_the_review_and_the_export(
    config: Config, config_path: Path
) -> None:
    out = io.StringIO()
    typed = io.StringIO("".join(f"{line}\n" for line in DETAILS))
    assert asyncio.run(run_console(config, typed, out, chat_id="details")) == 0
    screen = out.getvalue()
    review = screen.split("Here is your report")[1].split("> ")[0]
    assert "Before: It happened before. You said: yes, twice before" in review
    assert "You know who they are: No" in review
    assert "Would know them again: No. You said: no he had a mask on" in review
    assert "Seen by others: Yes. You said: yes a lady saw it" in review
    assert "Shared with: Police" in review
    done = screen.split("> send\n")[1]
    assert done.count("Your reference is HC-") == 1 and "Your secret code is" in done
    assert "call 101" in done and "18001 101" in done and "call 999" in done

    target = config_path.parent / "export.jsonl"
    assert main(["--config", str(config_path), "export", "--format", "jsonl", "--out", str(target)]) == 0
    [report] = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert report["description"] == "\n\n".join(
        ["a man shouted at me on the bus", "yes, twice before", "no he had a mask on", "yes a lady saw it"]
    )
    assert report["repeat"] == "before" and report["witnesses"] == "yes"
    assert report["offender"] == "a tall man in a red coat; known=no; recognise=no"
    assert report["share_with"] == ["police"]
