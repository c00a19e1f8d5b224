"""Feature statistics, histogram distances and their null distributions (pure numpy)."""
