"""Multi-month stories of departments, run end to end through the API and the bus."""
