"""The swap eval of a trained model: the cases as generation runs (`cases`), what each generated file shows
(`measure`), the cases scored against the seed-swap floor (`score`), and simulated generators that prove the
scorer (`simulate`)."""
