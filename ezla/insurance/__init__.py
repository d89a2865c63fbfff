"""Insurance relations payers keep with ZUS (who employs whom, since when; the family members an
insured person has reported, as on the ZCNA form), and the look-ups clinic software makes of them."""
