"""Personal: each reader's own view of an issue (profile: their "more / less like
this" marks as a TF-IDF profile)."""
