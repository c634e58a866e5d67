"""Write examples/intents.csv: the demo's customer-support intent dataset (English, columns text,label).

The data is synthetic and written by this script: a few hand-written sentence templates per class,
filled with slot values (amounts, currencies, merchants, days, payees, ...), wrapped in optional
politeness openers and closers, with a little noise (all lower case, a dropped final full stop).
Classes deliberately share vocabulary (card, transfer, money, account, app, PIN, refund, address,
declined, pending, rate) so that no single keyword gives a class away.

Deterministic: every class draws from its own random.Random seeded with a fixed string, so
`python examples/make_examples.py` rewrites the committed CSV byte for byte.

    python examples/make_examples.py [--out PATH]
"""

import argparse
import csv
import random
import string
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent / "intents.csv"
SEED = "tuneforge-examples-v1"
MIN_CHARS, MAX_CHARS = 10, 200

SLOTS = {
    "merchant": [
        "Amazon", "Tesco", "Café Nero", "Zara", "Uber", "Netflix", "Spotify", "Ryanair", "IKEA", "Lidl",
        "Booking.com", "Deliveroo", "eBay", "Boots", "Müller", "Crêperie du Port", "Apple", "Airbnb",
    ],
    "day": [
        "yesterday", "today", "this morning", "last night", "on Monday", "on Friday", "two days ago",
        "last week", "three days ago", "at the weekend", "an hour ago", "on Tuesday",
    ],
    "country": [
        "France", "Spain", "Italy", "Germany", "the US", "Japan", "Portugal", "Mexico", "Poland",
        "Switzerland", "Turkey", "Canada",
    ],
    "city": [
        "Paris", "Lisbon", "Berlin", "Madrid", "Barcelona", "Rome", "Kraków", "Zürich", "Montréal",
        "Manchester", "Dublin", "Amsterdam",
    ],
    "payee": [
        "my landlord", "my mum", "my sister", "a friend", "my flatmate", "my other bank account",
        "my builder", "José", "Zoé", "my dad", "a supplier", "my savings account",
    ],
    "wallet": ["Apple Pay", "Google Pay", "my debit card", "my credit card", "contactless", "my phone"],
    "method": ["Apple Pay", "Google Pay", "my debit card", "a bank transfer", "my credit card", "my card"],
    "since": ["yesterday", "Monday", "Friday", "last week", "this morning", "the weekend", "the 3rd"],
    "channel": ["the app", "online banking", "the mobile app", "the web app", "the banking app"],
    "ccy": ["euros", "pounds", "dollars", "yen", "Swiss francs", "złoty", "Canadian dollars"],
    "code": ["EUR", "GBP", "USD", "JPY", "CHF", "PLN", "CAD"],
}

# Names keep their capital after an opener: "Hi, Tesco charged me", not "Hi, tesco charged me".
PROPER_NOUNS = tuple(SLOTS["merchant"] + SLOTS["city"] + SLOTS["country"] + ["José", "Zoé"])

OPENERS = [
    "", "", "", "", "Hi, ", "Hello, ", "Hey, ", "Hi there! ", "Good morning. ", "Sorry to bother you, ",
    "Quick question: ", "Help! ", "Hello team, ", "Hiya, ",
]
CLOSERS = ["", "", "", "", " Thanks.", " Thank you!", " Please help.", " Cheers", " thx", " Thanks a lot."]

# Rows per class vary a little, as real intent data does.
ROWS_PER_CLASS = {
    "card_lost": 52,
    "card_declined": 54,
    "card_arrival": 48,
    "pin_blocked": 50,
    "transfer_pending": 56,
    "top_up_failed": 50,
    "refund_request": 52,
    "wrong_amount_charged": 50,
    "exchange_rate": 48,
    "cash_withdrawal": 48,
    "change_address": 48,
    "close_account": 50,
}

TEMPLATES = {
    "card_lost": [
        "I lost my card {day}, can you block it?",
        "My wallet was stolen in {city} {day} with my card in it.",
        "Someone took my card at {merchant}, please freeze it before they use it.",
        "Can't find my card anywhere. How do I get a replacement?",
        "lost my card",
        "I think I left my card in the cash machine {day}. Please cancel it!",
        "My card is missing and I'm worried someone will pay at {merchant} with it",
        "How do I report a stolen card in {channel}?",
        "Need to freeze my card, I haven't seen it since {since}",
        "I dropped my card somewhere in {city}. Can you send a new one to my address?",
        "Pickpocketed in {city} {day}, my phone and card are gone",
        "Is there a fee for replacing a card that was stolen?",
        "Will my new card have the same PIN? The old one was stolen {day}.",
        "My card fell out of my pocket {day}, what do I do now?",
        "Somebody has my card and just spent {amt} at {merchant}!",
        "Can you close my old card? It was stolen {day}.",
        "I can't remember where I put my card, should I cancel it?",
        "Please block my card right now, my bag was stolen {day}",
        "my card is gone, I need a new one sent to {city}",
        "Lost card in {country}, how can I pay for things until the replacement comes?",
        "Someone used my card at {merchant} after I lost it, will I get the money back?",
        "Can I freeze my card in {channel}? I think it fell out of my bag.",
    ],
    "card_declined": [
        "My card was declined at {merchant} {day}, but I have money in my account.",
        "Why does my card keep getting declined?",
        "A payment of {amt} at {merchant} was refused. Is my card blocked?",
        "card declined again at {merchant}",
        "I tried to pay {amt} with {wallet} and it got rejected",
        "Declined online at {merchant} even though the card details are correct.",
        "The shop said my card didn't work {day}. Is something wrong with my account?",
        "My card got declined in {country}. Do I need to turn on payments abroad?",
        "Card rejected at the till twice, and {channel} shows nothing",
        "Why was my payment declined when my balance is fine?",
        "I typed the right PIN but the terminal said declined.",
        "Contactless isn't working, my card is refused every time I tap it",
        "{merchant} won't accept my card, it says transaction declined",
        "Payment failed at {merchant}, the card was declined for no reason",
        "why won't my card work online",
        "I have {amt} in my account yet my card payment was rejected at {merchant}",
        "My card is not blocked but every payment fails {day}",
        "Is my card frozen? It got declined when I paid {amt} at {merchant}.",
        "Transaction refused in {country}, {channel} just says payment failed",
    ],
    "card_arrival": [
        "I ordered a new card {day} and it still hasn't arrived.",
        "When will my card arrive?",
        "my new card hasn't come yet",
        "How long does it take to deliver a card to {country}?",
        "Still waiting for my replacement card, you said it was sent {day}.",
        "Can you track my card? It should have arrived by now.",
        "Was my card sent to my old address? It never came.",
        "{channel} says my card is on its way but nothing has arrived",
        "Do I get my PIN with the card or separately? Neither has arrived.",
        "Is it normal for a card to take two weeks? Still waiting in {city}.",
        "card not delivered yet",
        "The post never brought my card, can you send another one?",
        "My new card still isn't here, it's been ten days",
        "Has my replacement card been posted yet? I lost the old one {day}.",
        "I'm waiting for my card to be delivered to {city}, any update?",
        "Can I use my card in {channel} before the physical card arrives?",
        "When does the card get here? I ordered it {day}",
        "where is my card",
    ],
    "pin_blocked": [
        "My PIN is blocked after too many wrong attempts.",
        "I entered the wrong PIN three times and now my card is blocked",
        "How do I unblock my PIN?",
        "pin locked",
        "I forgot my PIN, can I see it in {channel}?",
        "The ATM in {city} said my PIN is blocked, what now?",
        "My card got locked at {merchant} because I typed the code wrong",
        "Card blocked after a wrong code {day}, how can I use it again?",
        "I need to reset my PIN, I keep getting it wrong at the terminal.",
        "Locked out of my card at the cash machine {day}",
        "Too many incorrect PIN tries, please unlock my card",
        "Can you unblock my card? I mixed up my PIN with my old one.",
        "My card is blocked because I typed the wrong code too many times",
        "Got the PIN wrong at {merchant} and now contactless doesn't work either",
        "How many PIN attempts do I get before the card is blocked?",
        "I need a new passcode for my card, the old one is locked.",
        "Can I unblock my card in {channel} or do I have to go to an ATM?",
        "Wrong number entered too often at the machine, card now locked",
    ],
    "transfer_pending": [
        "I sent {amt} to {payee} {day} and it still hasn't arrived.",
        "My transfer has been pending since {since}. How long does it take?",
        "Why is my transfer to {payee} still processing?",
        "transfer stuck on pending",
        "{payee} says the money I sent {day} never arrived",
        "A bank transfer of {amt} to {country} shows as pending in {channel}",
        "How long do international transfers take? Mine has been pending since {since}.",
        "I made a transfer from my account {day} but the status hasn't changed",
        "Is my payment to {payee} delayed? It usually arrives within minutes.",
        "Still waiting for my transfer of {amt} to go through",
        "{channel} says the transfer was sent but {payee} has not received the money.",
        "when will the money I transferred to {payee} arrive",
        "Money sent to {payee} {day} is not showing on their side",
        "Why is my transfer taking so long?",
        "The {amt} I paid to {payee} is stuck, the status says pending.",
        "I transferred money to {country} {day}, when will it be received?",
        "Has my transfer to {payee} actually gone through?",
        "pending transfer to {payee}",
        "Was my transfer declined? It has been pending since {since}.",
        "Is a transfer slower than a card top up? Mine to {payee} is still pending",
    ],
    "top_up_failed": [
        "Adding {amt} to my account failed. Why?",
        "I tried to add money with my card but it didn't go through",
        "top up not working",
        "Topping up with {method} keeps failing.",
        "Why was my top up declined? My card works fine everywhere else.",
        "I topped up {amt} {day} but it never showed in my balance",
        "{channel} says the top up failed but the money left my other account.",
        "Can't add money to my account, it just says something went wrong",
        "My top up by bank transfer has been pending since {since}",
        "Adding {amt} with {method} was rejected, what's the problem?",
        "Is there a limit on top ups? Mine failed at {amt}.",
        "I can't load money onto my card, every attempt fails",
        "Adding funds with {method} failed but I was still charged {amt}",
        "Why can't I put money into my account with {method}?",
        "I tried to load {amt} three times and each attempt failed.",
        "My card top-up says declined, even though there is money in my bank",
        "The money I added {day} still isn't in my balance",
        "top-up error",
        "I tried to top up with cash at a shop and it failed",
        "My top up in {ccy} failed, is it because of the exchange rate?",
        "The app closed in the middle of a top up and the money is gone",
    ],
    "refund_request": [
        "{merchant} said they refunded me {amt} {day} but I don't see it in my account.",
        "How do I get my money back from {merchant}?",
        "I returned an order to {merchant} and still haven't got the refund",
        "Can I ask for a refund on a payment I made with my card?",
        "refund from {merchant} not showing",
        "I cancelled my {merchant} subscription but they still took the money, I want it back.",
        "How long does a refund take to reach my card?",
        "The seller agreed to refund {amt}, when will it appear in {channel}?",
        "My order from {merchant} never arrived, can you help me get my money back?",
        "Where is my refund? It has been pending since {since}.",
        "I want to dispute a payment to {merchant} and get a refund",
        "{merchant} promised to return {amt} to my card {day}, still nothing",
        "Can you get my money back for a payment at {merchant}? They won't answer me.",
        "I got charged for a {merchant} order I cancelled, please get the money back",
        "How do I request a refund in {channel}?",
        "Refund of {amt} from {merchant} still pending after two weeks",
        "A shop in {city} said they'd refund me, but nothing has arrived.",
        "want my money back from {merchant}",
    ],
    "wrong_amount_charged": [
        "I was charged {amt} at {merchant} but the price was {amt2}.",
        "Why did I pay more than the receipt says?",
        "The wrong amount was taken from my account for my {merchant} order",
        "{merchant} charged me twice {day}",
        "The amount on my card statement is wrong.",
        "I paid {amt} but {channel} shows a different amount",
        "charged {amt} instead of {amt2} at {merchant}",
        "My card was charged the wrong amount in {country}, was it the exchange rate?",
        "The payment to {merchant} was bigger than it should be, can I get the difference back?",
        "I was overcharged by {merchant} {day}, what can I do?",
        "I only spent {amt2} but my balance dropped by {amt}",
        "The taxi in {city} charged my card {amt}, the meter said {amt2}.",
        "Why was I charged {amt} for something that cost {amt2}?",
        "Wrong amount charged at {merchant}",
        "My card payment at {merchant} shows {amt} but I agreed to pay {amt2}.",
        "The hotel in {city} took {amt} from my card instead of {amt2}",
        "There's a payment of {amt} from {merchant}, it should have been {amt2}",
        "The amount I paid {day} doesn't match what the app shows",
        "Will I be refunded the difference? I was charged {amt}, not {amt2}.",
    ],
    "exchange_rate": [
        "What exchange rate do you use for {ccy}?",
        "Why did I get so little for my money when paying in {country}?",
        "How much is {amt} in {ccy} today?",
        "exchange rate {code} to {code2}",
        "The rate on my transfer to {country} was worse than the one on Google.",
        "Do you add anything on top of the exchange rate when I use my card abroad?",
        "Is the conversion rate in {channel} the real one?",
        "What rate will I get if I top up in {ccy}?",
        "Where can I see the current rate before I exchange money?",
        "Is it cheaper to pay in {ccy} or in the local currency in {country}?",
        "How is the amount converted when I pay {merchant} in {ccy}?",
        "Why does the {code} rate change at the weekend?",
        "How much will I pay in {ccy} if I spend {amt} abroad?",
        "How much do I lose on conversion when I transfer money to {country}?",
        "Your {code} to {code2} rate looks wrong today",
        "Converting to {ccy}, what does it cost?",
        "Does currency conversion cost more at weekends?",
        "Is it better to take cash in {ccy} or to pay by card in {country}?",
        "I'm going to {country}, how much will things cost me in {ccy} with my card?",
    ],
    "cash_withdrawal": [
        "The ATM didn't give me any notes but the money was taken from my account.",
        "I withdrew {amt} {day} but the machine only gave me part of it",
        "cash machine kept my money",
        "Why was I charged a fee for taking money out in {country}?",
        "ATM withdrawal failed but my balance went down",
        "I tried to take out {amt} at an ATM in {city} and got nothing.",
        "My withdrawal shows in {channel} but I never got the money",
        "The ATM declined my card when I tried to withdraw {amt}",
        "How much cash can I withdraw per day with my card?",
        "The cash machine gave me {amt2} instead of {amt}",
        "The ATM asked for my PIN twice and then gave me no cash",
        "Will I get a refund for the cash the ATM never gave me?",
        "Withdrawal of {amt} still pending, the ATM gave me no cash",
        "The cash machine in {city} charged me a fee, why?",
        "I got no money from the ATM but {channel} says I withdrew {amt}",
        "The ATM took my money but didn't give me anything {day}",
        "What's the limit for ATM withdrawals abroad?",
        "Can I get my money back? The ATM didn't dispense my cash.",
        "withdrew cash in {country} and was charged twice",
    ],
    "change_address": [
        "I moved house, how do I update my address?",
        "Can I change my address in {channel}?",
        "I need to update my home address before you send my new card.",
        "new address, where do I change it",
        "I moved to {city}, how do I update my details on the account?",
        "My address in my profile is wrong, can you fix it?",
        "I'm moving to {country} next month. Can I keep the account if I update where I live?",
        "Where in {channel} can I edit my personal details?",
        "Please update my postal address, I don't live at the old one any more",
        "Will changing my address affect my card or my transfers?",
        "What documents do I need to prove I live somewhere new?",
        "My postcode changed, how do I tell you?",
        "Will my PIN letter go to my new address?",
        "I have a new home address, where do I put it?",
        "How do I change where my cards and letters are sent?",
        "Can I update my details without visiting a branch?",
        "Please change my address to one in {city}.",
        "change of address",
        "My details are out of date since I moved, can I edit them in {channel}?",
    ],
    "close_account": [
        "How do I close my account?",
        "I want to delete my account and get my money out",
        "Please close my account, I'm switching banks.",
        "close account",
        "Can I cancel my card and close the account completely?",
        "What happens to my balance if I close my account?",
        "I don't use {channel} any more, how do I shut everything down?",
        "Is there a fee to leave? I want to transfer the remaining {amt} out first.",
        "I'd like to terminate my account and have my data deleted",
        "How can I stop being a customer? I've moved to another bank.",
        "Can I close my account from {channel}?",
        "Please cancel my account and send what's left to {payee}",
        "Will I get a refund of my monthly fee if I close my account?",
        "I'd like to close my account and transfer my money to another bank",
        "How do I cancel everything? I no longer need the card or the account.",
        "Delete my account please",
        "If I close my account, what happens to pending transfers?",
        "Can I close my account while I'm living in {country}?",
        "Want to leave, how do I quit",
    ],
}


AMOUNT_VALUES = [5, 9, 12, 15, 20, 25, 30, 40, 45, 50, 60, 75, 80, 100, 120, 150, 200, 250, 300, 500]
AMOUNT_FORMATS = ["£{v}", "€{v}", "${v}", "{v} euros", "{v} pounds", "{v} EUR", "£{v}.{c}", "€{v},{c}"]


def amounts(rng: random.Random) -> tuple[str, str]:
    """Two amounts in one currency format, the first larger: "charged {amt}, the price was {amt2}"."""
    pattern = rng.choice(AMOUNT_FORMATS)
    larger, smaller = sorted(rng.sample(AMOUNT_VALUES, 2), reverse=True)
    cents = [f"{rng.randrange(1, 100):02d}" for _ in range(2)]
    return pattern.format(v=larger, c=cents[0]), pattern.format(v=smaller, c=cents[1])


def fill(template: str, rng: random.Random) -> str:
    """The template with every {slot} replaced; {code2} differs from {code}."""
    values: dict[str, str] = {}
    values["amt"], values["amt2"] = amounts(rng)
    values["code"], values["code2"] = rng.sample(SLOTS["code"], 2)
    for _, name, _, _ in string.Formatter().parse(template):
        if name and name not in values:
            values[name] = rng.choice(SLOTS[name])
    sentence = template.format(**values)
    if sentence.split(" ", 1)[0] in ("the", "my", "a"):  # a slot value opened the sentence
        sentence = sentence[0].upper() + sentence[1:]
    return sentence


def dress(sentence: str, rng: random.Random) -> str:
    """Add a politeness opener/closer and a little noise, as people type."""
    opener = rng.choice(OPENERS)
    # "Hi, my card..." but "Hi, I lost", "Hi, PIN locked", "Hi, Tesco charged", "Help! My..." keep capitals.
    if (
        opener.endswith((", ", ": "))
        and sentence[:1].isupper()
        and (sentence[1:2].islower() or sentence.startswith("A "))
        and not sentence.startswith(PROPER_NOUNS)
    ):
        sentence = sentence[0].lower() + sentence[1:]
    closer = rng.choice(CLOSERS)
    if closer[1:2].isupper() and sentence[-1:].isalnum():
        sentence += "."
    text = opener + sentence + closer
    if rng.random() < 0.12:
        text = text.lower()
    if rng.random() < 0.15:
        text = text.rstrip(".")
    return text


def normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


def class_rows(label: str, count: int) -> list[str]:
    """`count` distinct texts of one class, spread evenly over its templates."""
    rng = random.Random(f"{SEED}:{label}")
    templates = TEMPLATES[label]
    # Each filled sentence is used once, so no two rows differ only by "Hi, " or "Thanks.".
    used_sentences: set[str] = set()
    texts: list[str] = []
    for attempt in range(count * 200):
        # Cycle through the templates so each shape appears about equally often; a template
        # without slots is used once and then skipped.
        sentence = fill(templates[attempt % len(templates)], rng)
        text = dress(sentence, rng)
        if normalised(sentence) in used_sentences or not MIN_CHARS <= len(text) <= MAX_CHARS:
            continue
        used_sentences.add(normalised(sentence))
        texts.append(text)
        if len(texts) == count:
            return texts
    raise RuntimeError(f"{label}: only {len(texts)} distinct texts, need {count}; add templates")


def build_rows() -> list[tuple[str, str]]:
    """All (text, label) rows, shuffled with a fixed seed so classes are interleaved."""
    rows = [(text, label) for label, count in ROWS_PER_CLASS.items() for text in class_rows(label, count)]
    keys = [normalised(text) for text, _ in rows]
    if len(set(keys)) != len(keys):
        raise RuntimeError("two classes produced the same text; rephrase a template")
    random.Random(SEED).shuffle(rows)
    return rows


def write_rows(rows: list[tuple[str, str]], path: Path) -> None:
    # "\n" line endings and UTF-8 whatever the platform, so the file is byte-for-byte reproducible.
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: examples/intents.csv")
    args = parser.parse_args(argv)
    rows = build_rows()
    write_rows(rows, args.out)
    print(f"wrote {len(rows)} rows, {len(ROWS_PER_CLASS)} classes to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
