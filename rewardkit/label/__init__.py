"""Collecting human feedback: a labelling app over a real database.

Vocabulary
- A *campaign* is one labelling job: a task kind (pairwise, ranking, rating, steps) and its *items*, each the
  content of one rewardkit record to be labelled (a prompt and responses, or a solution in steps).
- An *annotator* has a secret token; the link /a/TOKEN is their account. An *admin* token opens the admin page.
- An *assignment* gives one item to one annotator, with the order its responses are shown in (randomised, so
  position bias can be measured). A *label* answers one assignment; an assignment takes one label, ever, so a
  double-submitted form or two concurrent submissions record once.
- *Gold* items carry a known answer and go to every annotator (their accuracy on gold); *repeats* show an item a
  second time to the same annotators (their self-consistency).

Modules: store (the database and its migrations), tasks (each kind's item, form and label), quality (agreement,
gold accuracy, consistency, position bias), app (the web pages), export (labels back to rewardkit records).
"""
