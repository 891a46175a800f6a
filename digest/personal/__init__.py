"""Personal: each reader's own view of an issue — the phrases they watch and mute
(phrases: parsing, checking and matching them, folded as the area terms are), their
view (view: which papers open their e-mail "For you", which go, which stay in their
sections), and their profile (profile: their "more / less like this" marks as a TF-IDF
centroid that suggests papers and orders their sections). Pure: no database, no
rendering; mail/assembly.py builds the letters from it, and a reader's private feed
uses the same view.

May import: `digest.errors`, `digest.sections` (the folding of words), `digest.render`
(the view model).
"""
