"""What an evaluation reads: slide embeddings, HIPT's splits, the cohort they define,
training fractions and survival tables."""
