"""The contract between offline training and online serving: front end, labels, model card."""
